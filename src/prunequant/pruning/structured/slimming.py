"""Network slimming sparsity training (seed 004 formula 1): an L1 penalty on BatchNorm scaling factors.

L = loss + lambda * sum |gamma|; its subgradient lambda * sign(gamma) is added to every BN gamma's
gradient after backward, pushing unimportant channels' gamma to zero so `bn_gamma` pruning can drop them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

import torch
from torch import nn

from prunequant.training import Callback, Trainer
from prunequant.validation import check_positive


def bn_layers(model: nn.Module, patterns: Iterable[str] = ("*",)) -> list[nn.modules.batchnorm._BatchNorm]:
    """Affine BatchNorm layers of `model` whose names match one of the fnmatch `patterns`."""
    patterns = tuple(patterns)
    return [
        module
        for name, module in model.named_modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        and module.weight is not None
        and any(fnmatch.fnmatchcase(name, p) for p in patterns)
    ]


class BNSparsity(Callback):
    """Trainer callback adding `penalty * sign(gamma)` to each BN gamma gradient (network slimming)."""

    def __init__(self, penalty: float = 1e-4, layers: Iterable[str] = ("*",)) -> None:
        self.penalty = check_positive("penalty", penalty)
        self.layers = tuple(layers)

    def on_after_backward(self, trainer: Trainer) -> None:
        with torch.no_grad():
            for bn in bn_layers(trainer.model, self.layers):
                if bn.weight.grad is not None:
                    bn.weight.grad.add_(torch.sign(bn.weight), alpha=self.penalty)
