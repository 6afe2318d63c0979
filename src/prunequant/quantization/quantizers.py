"""Quantizer: a fake-quant module with its observer and its qparams in buffers (scale, zero_point).

Exporters read `scale`, `zero_point`, `bits`, `qmin`, `qmax` and `axis` (None: per tensor, 0-dim scale).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from prunequant.errors import ConfigError, ModelError
from prunequant.quantization.config import LayerQuant, check_bits, check_ema_decay, check_percentile
from prunequant.quantization.fake_quant import compute_qparams, fake_quantize, quant_range, quantize_codes
from prunequant.quantization.observers import AVERAGING, STATISTICS, RangeObserver
from prunequant.validation import check_choice


@dataclass(frozen=True)
class QuantizerSpec:
    """Plain-data description of a Quantizer (stored in the checkpoint manifest).

    `symmetric` selects the signed symmetric range with zero point 0; otherwise unsigned with a zero point.
    `fixed_range` (low, high): the range is these bounds, whatever is observed (an activation with a known
    output range: Sigmoid [0, 1], Tanh [-1, 1]).
    """

    bits: int
    symmetric: bool
    per_channel: bool = False
    statistic: str = "minmax"
    averaging: str = "extreme"
    percentile: float = 99.99
    ema_decay: float | None = None
    pow2_scale: bool = False
    fixed_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if check_bits("bits", self.bits) is None:
            raise ConfigError("a quantizer needs bits in 2..16")
        if self.fixed_range is not None:
            low, high = (float(bound) for bound in self.fixed_range)
            if not low < high:
                raise ConfigError(
                    f"fixed_range must be (low, high) with low < high, got {self.fixed_range!r}"
                )
            object.__setattr__(self, "fixed_range", (low, high))
        check_choice("statistic", self.statistic, STATISTICS)
        check_choice("averaging", self.averaging, AVERAGING)
        check_percentile(self.percentile)
        check_ema_decay(self.ema_decay)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def weight_spec(layer: LayerQuant) -> QuantizerSpec | None:
    """Weights: max|w| (or min/max) per output channel or tensor; a moving average with calibration='ema'."""
    if layer.w_bits is None:
        return None
    return QuantizerSpec(
        bits=layer.w_bits,
        symmetric=layer.symmetric_weights,
        per_channel=layer.per_channel,
        statistic="absmax" if layer.symmetric_weights else "minmax",
        averaging="average" if layer.calibration == "ema" else "last",
        ema_decay=layer.ema_decay,
        pow2_scale=layer.pow2_scale,
    )


_ACTIVATION_RANGES = {
    "minmax": ("minmax", "extreme"),
    "percentile": ("percentile", "average"),
    "ema": ("minmax", "average"),
}


def activation_spec(
    layer: LayerQuant, fixed_range: tuple[float, float] | None = None
) -> QuantizerSpec | None:
    """Activations: asymmetric per tensor, ranged as `layer.calibration` says, or over `fixed_range`."""
    if layer.a_bits is None:
        return None
    statistic, averaging = _ACTIVATION_RANGES[layer.calibration]
    return QuantizerSpec(
        bits=layer.a_bits,
        symmetric=False,
        statistic=statistic,
        averaging=averaging,
        percentile=layer.percentile,
        ema_decay=layer.ema_decay,
        pow2_scale=layer.pow2_scale,
        fixed_range=fixed_range,
    )


class Quantizer(nn.Module):
    """Uniform fake quantizer of `spec.bits` bits; per slice along `axis` when `spec.per_channel`.

    Ranges are updated from every input in training mode (QAT) and while `observing` (calibration, which
    passes inputs through unchanged); in eval mode the stored qparams are used as they are.
    """

    def __init__(self, spec: QuantizerSpec, *, channels: int = 1, axis: int = 0) -> None:
        super().__init__()
        self.spec = spec
        self.bits = spec.bits
        self.symmetric = spec.symmetric
        self.axis: int | None = axis if spec.per_channel else None
        self.qmin, self.qmax = quant_range(spec.bits, signed=spec.symmetric)
        self.observing = False
        self.observer = RangeObserver(
            spec.statistic,
            spec.averaging,
            channels=channels,
            axis=self.axis,
            percentile=spec.percentile,
            ema_decay=spec.ema_decay,
        )
        shape = () if self.axis is None else (channels,)
        self.register_buffer("scale", torch.ones(shape))
        self.register_buffer("zero_point", torch.zeros(shape, dtype=torch.int32))

    @property
    def calibrated(self) -> bool:
        """Whether a range has been observed (qparams are meaningful)."""
        return bool(self.observer.steps > 0)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Observe `x` (or, with a fixed range, set its bounds) and recompute scale and zero point."""
        if self.spec.fixed_range is None:
            self.observer.update(x)
        else:
            self.observer.fix(*self.spec.fixed_range)
        scale, zero_point = compute_qparams(
            self.observer.lower,
            self.observer.upper,
            self.qmin,
            self.qmax,
            symmetric=self.symmetric,
            pow2=self.spec.pow2_scale,
        )
        self.scale.copy_(scale)
        self.zero_point.copy_(zero_point)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            self.update(x)
            return x
        if self.training:
            self.update(x)
        elif not self.calibrated:
            raise ModelError(
                "an activation quantizer has no range yet; run calibrate(qmodel, loader) "
                "(or pass calib_loader to quantize(), CLI --calib-batches) before evaluating"
            )
        return fake_quantize(x, self.scale, self.zero_point, self.qmin, self.qmax, self.axis)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Integer codes of `x` under the current qparams (exactly what `forward` rounds to, in eval mode)."""
        return quantize_codes(x, self.scale, self.zero_point, self.qmin, self.qmax, self.axis)

    def extra_repr(self) -> str:
        kind = "symmetric" if self.symmetric else "asymmetric"
        where = "per tensor" if self.axis is None else f"per channel (axis {self.axis})"
        return f"bits={self.bits}, {kind}, {where}, range=[{self.qmin}, {self.qmax}]"
