"""Evaluation: top-1, top-5 and mean loss of a classifier over a loader."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class EvalResult:
    """Accuracy figures in [0, 1], mean cross-entropy and the number of samples."""

    top1: float
    top5: float
    loss: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


Predictor = Callable[[torch.Tensor], torch.Tensor]


def evaluate(model: torch.nn.Module | Predictor, loader: Iterable, *, max_batches: int = 0) -> EvalResult:
    """Evaluate `model` (an nn.Module, or any callable mapping a batch to logits, e.g. an ONNX runner)."""
    if isinstance(model, torch.nn.Module):
        model.eval()
    correct1 = correct5 = 0
    loss_sum = 0.0
    n = 0
    with torch.inference_mode():
        for index, (inputs, targets) in enumerate(loader):
            if max_batches and index >= max_batches:
                break
            logits = torch.as_tensor(model(inputs)).float()
            loss_sum += F.cross_entropy(logits, targets, reduction="sum").item()
            k = min(5, logits.shape[1])
            topk = logits.topk(k, dim=1).indices
            hits = topk.eq(targets.unsqueeze(1))
            correct1 += hits[:, 0].sum().item()
            correct5 += hits.any(dim=1).sum().item()
            n += targets.numel()
    if n == 0:
        return EvalResult(top1=0.0, top5=0.0, loss=float("nan"), n=0)
    return EvalResult(top1=correct1 / n, top5=correct5 / n, loss=loss_sum / n, n=n)
