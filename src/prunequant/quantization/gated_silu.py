"""SiLU and Hardswish with a quantized gate, x * q(sigmoid(x)) and x * q(hardsigmoid(x)): the form an
integer runtime can run.

A float SiLU exports as x * Sigmoid(x) and leaves both ops float between the int8 layers around it. With
the gate quantized on the fixed [0, 1] range, the exported graph reads DQ -> Sigmoid -> Q -> DQ -> Mul, which
onnxruntime fuses into QLinearSigmoid and QLinearMul (its QDQ selectors; checked in
tests/export/test_silu_int8.py). A Hardswish likewise reads DQ -> HardSigmoid -> Q -> DQ -> Mul, whose
HardSigmoid the export rewrites into an exact integer Add (export/hardsigmoid_qdq.py). `quantize()` uses
them for every `nn.SiLU` and `nn.Hardswish` (exact classes) it quantizes.
The gate has at least 8 bits: at lower activation widths a 4-bit sigmoid would cost accuracy for no
runtime (such models export as float that reproduces the fake quantization).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional

from prunequant.models import register_module_codec
from prunequant.quantization.quantizers import Quantizer, QuantizerSpec
from prunequant.quantization.wrappers import FIXED_RANGES


class GatedSiLU(nn.Module):
    """x * gate_quantizer(sigmoid(x)); the gate quantizer has the fixed range [0, 1], so it needs no
    calibration."""

    def __init__(self, bits: int = 8) -> None:
        super().__init__()
        self.bits = max(8, bits)
        spec = QuantizerSpec(bits=self.bits, symmetric=False, fixed_range=FIXED_RANGES[nn.Sigmoid])
        self.gate_quantizer: nn.Module = Quantizer(spec)
        self.gate_quantizer.update(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate_quantizer(torch.sigmoid(x))


class GatedHardswish(GatedSiLU):
    """x * gate_quantizer(hardsigmoid(x)): Hardswish with its gate on the fixed range [0, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate_quantizer(functional.hardsigmoid(x))


GATED: dict[type[nn.Module], type[GatedSiLU]] = {nn.SiLU: GatedSiLU, nn.Hardswish: GatedHardswish}


def gated(activation: nn.Module, bits: int) -> nn.Module:
    """`activation` as quantize() wraps it: gated for an exact `nn.SiLU` / `nn.Hardswish`, else itself."""
    kind = GATED.get(type(activation))
    return kind(bits) if kind is not None else activation


def _to_config(module: GatedSiLU) -> dict[str, Any]:
    return {"bits": module.bits}


for _kind in GATED.values():
    register_module_codec(_kind, _to_config, lambda config, kind=_kind: kind(int(config["bits"])))
