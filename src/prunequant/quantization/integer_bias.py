"""The bias an integer runtime adds: int32 codes at scale input_scale * weight_scale[c] (after BN folding).

onnxruntime's QLinearConv / QGemm need the bias as int32 on that grid, so the int8 exporter rounds it; the
fake-quant wrappers round it the same way in eval mode, so torch and the runtime compute the same numbers.
"""

from __future__ import annotations

import torch
from torch import nn

INT32_LIMIT = 2**31 - 1


def bias_codes(bias: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """int32 codes of `bias` at `scale` (float64 division, round half to even, clipped to the int32 range)."""
    codes = torch.round(bias.double() / scale.double())
    return torch.clamp(codes, -INT32_LIMIT, INT32_LIMIT).to(torch.int32)


def integer_bias(
    bias: torch.Tensor | None,
    weight_scale: torch.Tensor,
    input_scale: torch.Tensor,
    norm: nn.BatchNorm2d | None = None,
) -> torch.Tensor:
    """The layer bias on the int32 grid, in the layer's own output units (before `norm`, if given).

    With `norm` (a BatchNorm the exporter folds into the layer) the folded bias
    (b - mean) * gamma / sqrt(var + eps) + beta is rounded at input_scale * weight_scale * |gamma / sqrt(var
    + eps)| and mapped back through the BN, so that BN(layer output) equals the folded integer layer. A
    channel whose BN scale is 0 keeps its float bias (its output is beta whatever the bias).
    """
    channels = weight_scale.numel() if norm is None else norm.num_features
    bias = torch.zeros(channels, dtype=weight_scale.dtype) if bias is None else bias.detach()
    scale = (input_scale * weight_scale).expand(bias.shape)
    if norm is None:
        return (bias_codes(bias, scale) * scale.double()).to(bias.dtype)
    rsqrt = torch.rsqrt(norm.running_var + norm.eps)
    gamma = torch.ones_like(rsqrt) if norm.weight is None else norm.weight.detach()
    beta = torch.zeros_like(rsqrt) if norm.bias is None else norm.bias.detach()
    factor = gamma * rsqrt
    folded = (bias - norm.running_mean) * rsqrt * gamma + beta
    folded_scale = scale * factor.abs()
    rounded = (bias_codes(folded, folded_scale) * folded_scale.double()).to(bias.dtype)
    unfolded = (rounded - beta) / torch.where(factor == 0, 1, factor) + norm.running_mean
    return torch.where(factor == 0, bias, unfolded)
