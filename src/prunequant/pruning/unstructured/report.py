"""sparsity_report: the zeros actually in each conv/linear weight (what forward computes with), and the
masks beside them, for prunequant- and torch-pruned models."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from prunequant.pruning.unstructured.mask_guard import is_guarded
from prunequant.pruning.unstructured.masks import masked_params
from prunequant.pruning.unstructured.targets import candidate_tensors
from prunequant.pruning.unstructured.torch_prune_interop import torch_pruned_params


@dataclass(frozen=True)
class SparsityReport:
    """Actual zeros over all conv/linear weights (and biases with include_bias), per tensor, and the masks.

    `sparsity`, `zeros`, `layers`: exact zeros of the effective weights, i.e. what the layers compute with
    (a prunequant mask held by its hooks is applied before every forward; torch.nn.utils.prune's weight is
    `weight_orig * weight_mask`). `masked`: tensors carrying a mask; `mask_sparsity`: the share each mask
    prunes. `mismatches`: one line per tensor whose weights hold fewer zeros than its mask says (e.g.
    "conv1.weight: mask says 70.0%, weights have 2.0%"), empty when every mask holds.
    """

    sparsity: float
    zeros: int
    total: int
    layers: dict[str, float]
    masked: list[str]
    mask_sparsity: dict[str, float] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def sparsity_report(model: nn.Module, *, include_bias: bool = False) -> SparsityReport:
    """Count the exact zeros in every conv/linear weight as the layer computes with it, beside its mask.

    Parameters
    ----------
    model:
        Any model; prunequant masks and torch.nn.utils.prune reparametrisations are both read.
    include_bias:
        Count biases too.

    Returns
    -------
    SparsityReport; its `mismatches` name every mask the weights do not follow.
    """
    effective, masks = _effective_weights(model), _masks(model)
    layers, zeros, total = {}, 0, 0
    for target in candidate_tensors(model, include_bias):
        tensor = effective.get(target.name, getattr(target.module, target.param).detach())
        count = int(tensor.numel() - torch.count_nonzero(tensor))
        layers[target.name] = count / tensor.numel()
        zeros += count
        total += tensor.numel()
    mask_sparsity = {name: float((~mask).sum()) / mask.numel() for name, mask in masks.items()}
    mismatches = [
        f"{name}: mask says {share:.1%}, weights have {layers[name]:.1%}"
        for name, share in mask_sparsity.items()
        if name in layers and layers[name] < share - 0.5 / masks[name].numel()
    ]
    return SparsityReport(
        zeros / total if total else 0.0, zeros, total, layers, list(masks), mask_sparsity, mismatches
    )


def _masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """{name: keep-mask} of prunequant and torch.nn.utils.prune masks."""
    masks = {item.name: item.mask for item in masked_params(model)}
    for name, module, param in torch_pruned_params(model):
        masks[name] = getattr(module, param + "_mask").detach().ne(0)
    return masks


def _effective_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weight each masked layer computes with (others are read as they are)."""
    effective = {}
    for item in masked_params(model):
        tensor = item.tensor.detach()
        held = is_guarded(item.module) and tensor.shape == item.mask.shape
        effective[item.name] = tensor.masked_fill(~item.mask, 0.0) if held else tensor
    for name, module, param in torch_pruned_params(model):
        effective[name] = (getattr(module, param + "_orig") * getattr(module, param + "_mask")).detach()
    return effective
