"""The Trainer: one loop for training, fine-tuning and refine-tuning, extended through callbacks."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from prunequant.progress import progress_bar
from prunequant.training.callbacks import Callback
from prunequant.training.config import TrainConfig
from prunequant.training.evaluate import evaluate
from prunequant.training.lr_schedules import build_optimizer, build_scheduler


class Trainer:
    """Train `model` in place on `train_loader`, validating on `val_loader` after every epoch.

    With early stopping on, the weights of the best validation epoch are restored at the end.
    Callbacks may set `trainer.stop_training = True` to end after the current epoch.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        train_loader: Iterable,
        val_loader: Iterable | None = None,
        config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.model = model
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.config = config or TrainConfig()
        self.callbacks = list(callbacks)
        self.optimizer = build_optimizer(model, self.config)
        self.scheduler = build_scheduler(self.optimizer, self.config)
        self.epoch = 0
        self.global_step = 0
        self.history: list[dict[str, float]] = []
        self.stop_training = False

    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def _batches_per_epoch(self) -> int:
        total = len(self.train_loader)  # type: ignore[arg-type]
        limit = self.config.max_batches_per_epoch
        return min(total, limit) if limit else total

    def fit(self) -> list[dict[str, float]]:
        """Run all epochs; returns the per-epoch history (train loss, val top1/loss, lr)."""
        best_top1, best_state, patience_left = -1.0, None, self.config.early_stopping_patience
        self._call("on_train_start")
        with progress_bar() as bar:
            task = bar.add_task("train", total=self.config.epochs, status="") if bar else None
            for epoch in range(self.config.epochs):
                self.epoch = epoch
                metrics = self._run_epoch(epoch)
                self.history.append(metrics)
                if bar is not None:
                    bar.update(task, advance=1, status=_status(metrics))
                if self.config.early_stopping_patience and "val_top1" in metrics:
                    if metrics["val_top1"] > best_top1:
                        best_top1, patience_left = metrics["val_top1"], self.config.early_stopping_patience
                        best_state = copy.deepcopy(self.model.state_dict())
                    else:
                        patience_left -= 1
                        self.stop_training = self.stop_training or patience_left <= 0
                if self.stop_training:
                    break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        self._call("on_train_end")
        return self.history

    def _run_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        self._call("on_epoch_start", epoch)
        lr = self.optimizer.param_groups[0]["lr"]
        loss_sum, seen, limit = 0.0, 0, self._batches_per_epoch()
        for batch, (inputs, targets) in enumerate(self.train_loader):
            if batch >= limit:
                break
            self._call("on_batch_start", batch)
            logits = self.model(inputs)
            loss = F.cross_entropy(logits, targets, label_smoothing=self.config.label_smoothing)
            for callback in self.callbacks:
                extra = callback.extra_loss(self)
                if extra is not None:
                    loss = loss + extra
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._call("on_after_backward")
            self.optimizer.step()
            self.global_step += 1
            loss_value = loss.item()
            loss_sum += loss_value * targets.numel()
            seen += targets.numel()
            self._call("on_batch_end", batch, loss_value)
        self.scheduler.step()
        metrics = {"epoch": float(epoch), "lr": lr, "train_loss": loss_sum / max(1, seen)}
        if self.val_loader is not None:
            result = evaluate(self.model, self.val_loader)
            metrics.update(val_top1=result.top1, val_loss=result.loss)
        self._call("on_epoch_end", epoch, metrics)
        return metrics


def _status(metrics: dict[str, float]) -> str:
    text = f"loss {metrics['train_loss']:.3f}"
    if "val_top1" in metrics:
        text += f"  val {100 * metrics['val_top1']:.2f}%"
    return text
