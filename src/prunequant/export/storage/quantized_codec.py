"""Quantized weights in the compressed container: bit-packed integer codes plus per-channel scale and zero
point, and (when it saves space) a 1-bit mask so zero weights (pruned, or rounded to 0) store no code.

`save_quantized(qmodel, path)` writes the deployed weights of every quantized layer this way; loading the
file (load_compressed) gives back exactly the fake-quant model's effective weights, bit for bit. The latent
float weights of QAT are not kept.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.export.storage.bitpack import pack_bits, packed_nbytes, unpack_bits
from prunequant.export.storage.container import TensorCodec, register_tensor_codec, save_compressed
from prunequant.quantization.fake_quant import dequantize, quantize_codes
from prunequant.quantization.wrappers import QuantConv2d, QuantLinear, quantized_layers


class QuantizedCodec:
    """Codes of `bits` bits in [qmin, qmax] along `axis` (None: per tensor).

    To encode, it needs the quantizer's `scale` and `zero_point` (and the layer's zero mask); decoding
    reads them from the stored data.
    """

    name = "quantized"

    def __init__(
        self,
        bits: int,
        qmin: int,
        qmax: int,
        axis: int | None,
        *,
        scale: torch.Tensor | None = None,
        zero_point: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> None:
        self.bits, self.qmin, self.qmax, self.axis = bits, qmin, qmax, axis
        self.scale, self.zero_point, self.mask = scale, zero_point, mask

    @classmethod
    def for_layer(cls, layer: QuantConv2d | QuantLinear) -> QuantizedCodec:
        """The codec of `layer.weight` under its weight quantizer's current qparams."""
        quantizer = layer.weight_quantizer
        if quantizer is None:
            raise ConfigError("this layer's weights are not quantized; store them with the dense codec")
        return cls(
            quantizer.bits,
            quantizer.qmin,
            quantizer.qmax,
            quantizer.axis,
            scale=quantizer.scale.detach().clone(),
            zero_point=quantizer.zero_point.detach().clone(),
            mask=layer.weight_mask,
        )

    def encode(self, t: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.scale is None or self.zero_point is None:
            raise ConfigError("a quantized codec needs scale and zero_point to encode; use for_layer(layer)")
        weight = t.detach() if self.mask is None else t.detach() * self.mask
        codes = quantize_codes(weight, self.scale, self.zero_point, self.qmin, self.qmax, self.axis)
        codes = codes.reshape(-1)
        data = {"scale": self.scale, "zero_point": self.zero_point, "shape": torch.tensor(list(t.shape))}
        keep = codes != self._zero_codes(t.shape)
        numel, kept = codes.numel(), int(keep.sum())
        if packed_nbytes(numel, 1) + packed_nbytes(kept, self.bits) < packed_nbytes(numel, self.bits):
            data["bitmask"] = pack_bits(keep.long(), 1)
            codes = codes[keep]
        data["codes"] = pack_bits(codes - self.qmin, self.bits)
        return data

    def decode(self, d: dict[str, torch.Tensor]) -> torch.Tensor:
        shape = [int(size) for size in d["shape"].tolist()]
        scale, zero_point = d["scale"], d["zero_point"]
        numel = math.prod(shape)
        if "bitmask" in d:
            keep = unpack_bits(d["bitmask"], 1, numel).bool()
            codes = self._zero_codes(shape, zero_point).clone()
            codes[keep] = unpack_bits(d["codes"], self.bits, int(keep.sum())) + self.qmin
        else:
            codes = unpack_bits(d["codes"], self.bits, numel) + self.qmin
        return dequantize(codes.reshape(shape), scale, zero_point, self.axis)

    def config(self) -> dict[str, Any]:
        return {"bits": self.bits, "qmin": self.qmin, "qmax": self.qmax, "axis": self.axis}

    def _zero_codes(self, shape: Any, zero_point: torch.Tensor | None = None) -> torch.Tensor:
        """The code of 0.0 at every position (the zero point of its channel), flat int64."""
        zero_point = (self.zero_point if zero_point is None else zero_point).long()
        if self.axis is not None:
            view = [1] * len(shape)
            view[self.axis] = -1
            zero_point = zero_point.reshape(view)
        return zero_point.expand(*shape).reshape(-1)


class BitmaskCodec:
    """A bool tensor at one bit per entry (the preserved-zero masks of quantized layers)."""

    name = "bitmask"

    def encode(self, t: torch.Tensor) -> dict[str, torch.Tensor]:
        if t.dtype != torch.bool:
            raise ConfigError(f"the bitmask codec stores bool tensors, got {t.dtype}")
        return {"bits": pack_bits(t.long(), 1), "shape": torch.tensor(list(t.shape))}

    def decode(self, d: dict[str, torch.Tensor]) -> torch.Tensor:
        shape = [int(size) for size in d["shape"].tolist()]
        return unpack_bits(d["bits"], 1, math.prod(shape)).bool().reshape(shape)

    def config(self) -> dict[str, Any]:
        return {}


register_tensor_codec("quantized", lambda config: QuantizedCodec(**config))
register_tensor_codec("bitmask", lambda config: BitmaskCodec())


def quantized_codecs(qmodel: nn.Module) -> dict[str, TensorCodec]:
    """{state_dict key: codec} for every quantized weight of `qmodel` and its zero mask."""
    codecs: dict[str, TensorCodec] = {}
    for name, layer in quantized_layers(qmodel):
        prefix = f"{name}." if name else ""
        if layer.weight_quantizer is not None:
            codecs[f"{prefix}weight"] = QuantizedCodec.for_layer(layer)
        if layer.weight_mask is not None:
            codecs[f"{prefix}weight_mask"] = BitmaskCodec()
    return codecs


def save_quantized(qmodel: nn.Module, path: str | os.PathLike[str], **meta: Any) -> int:
    """Write `qmodel` as a compressed container with bit-packed quantized weights; return the file bytes.

    Read it back with `load_compressed(path)` (import prunequant.quantization first, so the quantized
    layer types are known). Other tensors use the container's default (dense or sparse) codec.
    """
    codecs = quantized_codecs(qmodel)
    if not any(isinstance(codec, QuantizedCodec) for codec in codecs.values()):
        raise ConfigError("the model has no quantized weights; quantize it first (w_bits set)")
    return save_compressed(qmodel, path, codecs=codecs, **meta)
