"""Cost formulas of one layer call: params by seed 000 eq. (1)/(2), FLOPs by eq. (3)/(4), and MACs.

MACs count multiply-accumulates (the convention of most CNN papers: ResNet-56 = 125M).
FLOPs follow seed 000: conv 2*H*W*(C_in/groups*K^2 + 1)*C_out, FC 2*in*out. A transposed conv scatters
every input position through its kernel: MACs = C_in * C_out/groups * prod(K) * prod(input spatial).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerCost:
    """Costs of one call of one layer; `formula_params` is None where the seed has no formula."""

    macs: int
    flops: int
    formula_params: int | None
    weight_density: float


def _density(module: nn.Module) -> float:
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.numel() == 0:
        return 1.0
    return float(torch.count_nonzero(weight.detach())) / weight.numel()


def layer_cost(module: nn.Module, inputs: tuple, output: torch.Tensor) -> LayerCost:
    """Costs of `module` for the given call (batch size 1 is assumed by dividing by the batch)."""
    density = _density(module)
    batch = output.shape[0] if output.dim() > 1 else 1
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return _transposed_cost(module, inputs, output, density)
    if isinstance(module, nn.modules.conv._ConvNd):
        out_elems = output.numel() // batch  # C_out * H_out * W_out
        kernel = 1
        for k in module.kernel_size:
            kernel *= k
        per_output = module.in_channels // module.groups * kernel
        macs = out_elems * per_output
        bias = 1 if module.bias is not None else 0
        flops = 2 * out_elems * (per_output + 1)
        params = (per_output + bias) * module.out_channels
        return LayerCost(macs, flops, params, density)
    if isinstance(module, nn.Linear):
        rows = output.numel() // batch // module.out_features
        macs = rows * module.in_features * module.out_features
        bias = 1 if module.bias is not None else 0
        params = (module.in_features + bias) * module.out_features
        return LayerCost(macs, 2 * macs, params, density)
    if isinstance(module, _NORMS):
        elems = output.numel() // batch
        return LayerCost(elems, 2 * elems, None, density)
    return LayerCost(0, 0, None, density)


_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def _transposed_cost(
    module: nn.modules.conv._ConvTransposeNd, inputs: tuple, output: torch.Tensor, density: float
) -> LayerCost:
    """Each input element meets C_out/groups * prod(K) weights; bias adds once per output element."""
    x = inputs[0]
    batch = x.shape[0] if x.dim() > len(module.kernel_size) + 1 else 1
    in_elems = x.numel() // batch  # C_in * prod(input spatial)
    kernel = math.prod(module.kernel_size)
    macs = in_elems * module.out_channels // module.groups * kernel
    bias = 1 if module.bias is not None else 0
    out_elems = output.numel() // batch
    params = module.in_channels * (module.out_channels // module.groups) * kernel + bias * module.out_channels
    return LayerCost(macs, 2 * macs + bias * out_elems, params, density)
