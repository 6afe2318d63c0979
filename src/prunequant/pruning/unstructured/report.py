"""sparsity_report: the share of zeros per conv/linear tensor, for prunequant- and torch-pruned models."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from prunequant.pruning.unstructured.masks import masked_params
from prunequant.pruning.unstructured.targets import candidate_tensors
from prunequant.pruning.unstructured.torch_prune_interop import torch_pruned_params


@dataclass(frozen=True)
class SparsityReport:
    """Zeros over all conv/linear weights (and biases with include_bias), per tensor, and which are masked."""

    sparsity: float
    zeros: int
    total: int
    layers: dict[str, float]
    masked: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def sparsity_report(model: nn.Module, *, include_bias: bool = False) -> SparsityReport:
    """Count exact zeros in every conv/linear weight (reads torch.nn.utils.prune's masked weights too)."""
    layers, zeros, total = {}, 0, 0
    for target in candidate_tensors(model, include_bias):
        tensor = getattr(target.module, target.param).detach()
        count = int(tensor.numel() - torch.count_nonzero(tensor))
        layers[target.name] = count / tensor.numel()
        zeros += count
        total += tensor.numel()
    masked = [item.name for item in masked_params(model)] + [
        name for name, _, _ in torch_pruned_params(model)
    ]
    return SparsityReport(zeros / total if total else 0.0, zeros, total, layers, masked)
