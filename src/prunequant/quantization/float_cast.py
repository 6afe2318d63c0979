"""16-bit float variants (seed 000's float16 run): parameters rounded through fp16 / bf16 and back.

An ACCURACY variant only: the copy still computes in float32 (real fp16/bf16 kernels are slower on CPUs
without AVX-512/AMX). Use it to see what the narrower float format costs in accuracy.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from prunequant.validation import check_choice

FLOAT_FORMATS: dict[str, torch.dtype] = {"fp16": torch.float16, "bf16": torch.bfloat16}


def cast_weights(model: nn.Module, fmt: str) -> nn.Module:
    """A copy of `model` whose floating-point parameters and buffers are rounded to `fmt` and back."""
    dtype = FLOAT_FORMATS[check_choice("format", fmt, tuple(FLOAT_FORMATS))]
    variant = copy.deepcopy(model)
    with torch.no_grad():
        for tensor in [*variant.parameters(), *variant.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(dtype))
    return variant
