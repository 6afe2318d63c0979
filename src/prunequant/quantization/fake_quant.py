"""Uniform affine fake quantization: integer ranges, scales and zero points, and the fused torch ops.

torch's fused `fake_quantize_per_tensor_affine` / `fake_quantize_per_channel_affine` accept every range used
here (2..16 bits, signed and unsigned; checked on torch 2.13), round half to even, and give the straight-
through gradient: 1 where the rounded value lies inside [qmin, qmax], 0 where it is clipped. No custom
autograd op is needed.
"""

from __future__ import annotations

import torch

MIN_SCALE = torch.finfo(torch.float32).eps
"""Smallest scale; a range of width 0 (an all-zero channel) gets this instead of a division by zero."""


def quant_range(bits: int, signed: bool) -> tuple[int, int]:
    """Integer range of `bits`: signed symmetric [-(2^(b-1)-1), 2^(b-1)-1] (no -2^(b-1), as ONNX Runtime's
    S8 kernels want) or unsigned [0, 2^b - 1]."""
    if signed:
        top = 2 ** (bits - 1) - 1
        return -top, top
    return 0, 2**bits - 1


def compute_qparams(
    lower: torch.Tensor, upper: torch.Tensor, qmin: int, qmax: int, *, symmetric: bool, pow2: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale (float32) and zero point (int32) covering [lower, upper] elementwise.

    Symmetric: scale = max(|lower|, |upper|) / qmax, zero point 0. Asymmetric: the range is widened to hold
    0, scale = (upper - lower) / (qmax - qmin) (2^b equal levels spanning the range, seed 000 §III.C) and
    zero point = qmin - round(lower / scale), so 0 is exactly representable. `pow2` rounds scales up to 2^k.
    """
    lower, upper = lower.float(), upper.float()
    if symmetric:
        scale = torch.maximum(-lower, upper).clamp_min(0) / qmax
    else:
        lower, upper = lower.clamp_max(0), upper.clamp_min(0)
        scale = (upper - lower) / (qmax - qmin)
    scale = scale.clamp_min(MIN_SCALE)
    if pow2:
        scale = torch.exp2(torch.ceil(torch.log2(scale)))
    if symmetric:
        zero_point = torch.zeros_like(scale, dtype=torch.int32)
    else:
        zero_point = (qmin - torch.round(lower / scale)).clamp(qmin, qmax).to(torch.int32)
    return scale, zero_point


def fake_quantize(
    x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int, axis: int | None
) -> torch.Tensor:
    """(clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point) * scale, per tensor (`axis` None,
    0-dim scale) or per slice along `axis`; straight-through gradient inside the range."""
    if axis is None:
        return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax)
    return torch.fake_quantize_per_channel_affine(x, scale, zero_point, axis, qmin, qmax)


def _along(t: torch.Tensor, axis: int | None, ndim: int) -> torch.Tensor:
    """`t` (0-dim, or one value per slice along `axis`) shaped to broadcast against an `ndim` tensor."""
    if axis is None:
        return t
    shape = [1] * ndim
    shape[axis] = -1
    return t.reshape(shape)


def quantize_codes(
    x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int, axis: int | None
) -> torch.Tensor:
    """The int64 codes in [qmin, qmax] whose `dequantize` equals `fake_quantize(x, ...)` bit for bit."""
    with torch.no_grad():
        fake = fake_quantize(x.detach().float(), scale, zero_point, qmin, qmax, axis)
        codes = torch.round(fake / _along(scale, axis, x.dim())).long() + _along(zero_point, axis, x.dim())
    return codes.clamp(qmin, qmax)


def dequantize(
    codes: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, axis: int | None
) -> torch.Tensor:
    """float32 values (codes - zero_point) * scale, computed as the fused fake-quant op computes them."""
    ndim = codes.dim()
    return (codes - _along(zero_point, axis, ndim)).float() * _along(scale.float(), axis, ndim)
