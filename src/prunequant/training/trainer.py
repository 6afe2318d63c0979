"""The Trainer: one loop for training, fine-tuning and refine-tuning, extended through callbacks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from prunequant.progress import progress_bar
from prunequant.tasks import BatchTransform, Task, batch_size_of, run_model, to_device, with_transform
from prunequant.training.callbacks import Callback
from prunequant.training.config import TrainConfig
from prunequant.training.device import Device, placed_on, resolve_device
from prunequant.training.distill import Distillation, Distiller
from prunequant.training.early_stopping import EarlyStopping
from prunequant.training.evaluate import evaluate
from prunequant.training.lr_schedules import build_optimizer, build_scheduler


class Trainer:
    """Train `model` in place on `train_loader`, validating on `val_loader` after every epoch.

    The task (classification by default) splits batches, computes the loss and scores validation. With
    `config.early_stopping_patience` an EarlyStopping callback (first in the list) follows the task's
    primary metric in its direction and restores the weights of the best validation epoch at the end
    (`trainer.early_stopping`). With `distill` a Distiller mixes knowledge distillation from its teacher
    into the loss (`trainer.distiller`). During a batch, callbacks see `trainer.inputs`, `trainer.target`,
    `trainer.outputs` and `trainer.loss`. Callbacks may set `trainer.stop_training = True` to end after the
    current epoch. `transform_fn(batch) -> (inputs, target)` splits batches of any shape (see `Task`).
    `device` ("auto", the default: CUDA if available, else the CPU; see `default_device`) is where `fit`
    trains; the model is moved there and back to where it was when `fit` ends.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        train_loader: Iterable,
        val_loader: Iterable | None = None,
        config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (),
        task: Task | None = None,
        *,
        distill: Distillation | None = None,
        transform_fn: BatchTransform | None = None,
        device: Device | None = None,
    ) -> None:
        self.model = model
        self.task = with_transform(task, transform_fn)
        self.device = resolve_device(device)
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.config = config or TrainConfig()
        self.callbacks = list(callbacks)
        patience = self.config.early_stopping_patience
        self.early_stopping = EarlyStopping(patience) if patience else None
        if self.early_stopping is not None:
            self.callbacks.insert(0, self.early_stopping)  # restores the best weights before other hooks
        self.distiller = Distiller(distill) if distill is not None else None
        if self.distiller is not None:
            self.callbacks.append(self.distiller)
        self.optimizer = build_optimizer(model, self.config)
        self.scheduler = build_scheduler(self.optimizer, self.config)
        self.epoch = 0
        self.global_step = 0
        self.history: list[dict[str, float]] = []
        self.stop_training = False
        self.inputs: Any = None
        self.target: Any = None
        self.outputs: Any = None
        self.loss: torch.Tensor | None = None

    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def _batches_per_epoch(self) -> int:
        total = len(self.train_loader)  # type: ignore[arg-type]
        limit = self.config.max_batches_per_epoch
        return min(total, limit) if limit else total

    def fit(self) -> list[dict[str, float]]:
        """Run all epochs; returns the history (train_loss, lr, val_<metric>, val_loss, val_score)."""
        self._call("on_train_start")
        teacher = self.distiller.config.teacher if self.distiller is not None else None
        with placed_on(self.model, self.device), placed_on(teacher, self.device), progress_bar() as bar:
            task = bar.add_task("train", total=self.config.epochs, status="") if bar else None
            for epoch in range(self.config.epochs):
                self.epoch = epoch
                metrics = self._run_epoch(epoch)
                self.history.append(metrics)
                if bar is not None:
                    bar.update(task, advance=1, status=self._status(metrics))
                if self.stop_training:
                    break
        self._call("on_train_end")
        return self.history

    def _run_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        self._call("on_epoch_start", epoch)
        lr = self.optimizer.param_groups[0]["lr"]
        loss_sum, seen, limit = 0.0, 0, self._batches_per_epoch()
        for batch, data in enumerate(self.train_loader):
            if batch >= limit:
                break
            self.inputs, self.target = to_device(self.task.split(data), self.device)
            self._call("on_batch_start", batch)
            self.outputs = run_model(self.model, self.inputs)
            loss = self.loss = self.task.loss(self.outputs, self.target)
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
            size = batch_size_of(self.inputs)
            loss_sum += loss_value * size
            seen += size
            self._call("on_batch_end", batch, loss_value)
        self.scheduler.step()
        metrics = {"epoch": float(epoch), "lr": lr, "train_loss": loss_sum / max(1, seen)}
        if self.val_loader is not None:
            result = evaluate(self.model, self.val_loader, self.task)
            metrics.update({f"val_{name}": value for name, value in result.metrics.items()})
            metrics.update(val_loss=result.loss, val_score=result.score)
        self._call("on_epoch_end", epoch, metrics)
        return metrics

    def _status(self, metrics: dict[str, float]) -> str:
        text = f"loss {metrics['train_loss']:.3f}"
        if "val_score" in metrics:
            spec = self.task.primary_metric
            text += f"  val {spec.name} {spec.format(metrics['val_score'])}"
        return text
