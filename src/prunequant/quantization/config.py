"""QuantConfig: what to quantize and how, validated when built; per-layer settings via fnmatch patterns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from fnmatch import fnmatchcase
from typing import Any

from prunequant.errors import ConfigError
from prunequant.validation import check_choice, check_fraction

MIN_BITS, MAX_BITS = 2, 16
CALIBRATIONS = ("minmax", "percentile", "ema")


def check_bits(name: str, value: int | None) -> int | None:
    """Check an integer bit width in 2..16; None means keep float."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_BITS <= value <= MAX_BITS:
        raise ConfigError(
            f"{name} must be an integer in {MIN_BITS}..{MAX_BITS} or None (keep float), got {value!r}"
        )
    return value


def check_percentile(value: float) -> float:
    """Check a calibration percentile in (50, 100]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 50 < value <= 100:
        raise ConfigError(f"percentile must be a number in (50, 100], e.g. 99.99; got {value!r}")
    return float(value)


def check_ema_decay(value: float | None) -> float | None:
    """Check an EMA decay in (0, 1); None means the cumulative average of seed 003 Alg. 2."""
    if value is None:
        return None
    decay = check_fraction("ema_decay", value)
    if decay == 0:
        raise ConfigError(f"ema_decay must be in (0, 1) or None (cumulative average), got {value!r}")
    return decay


@dataclass(frozen=True)
class LayerQuant:
    """Quantization settings of one layer.

    - `w_bits`: symmetric weights in [-(2^(b-1)-1), 2^(b-1)-1] (zero point 0), per output channel or per
      tensor; `symmetric_weights=False` gives asymmetric weights in [0, 2^b-1] with a zero point.
    - `a_bits`: asymmetric per-tensor activations in [0, 2^b-1] with a zero point.
    - `calibration`: activation ranges from the global min/max, the mean of per-batch percentiles, or
      moving averages of per-batch min/max (seed 003 Alg. 2). "ema" also makes the weight range a moving
      average of max|w| during QAT (Alg. 3); otherwise it is the current max|w|.
    - `ema_decay`: None gives Alg. 2's cumulative average (l <- (l*t + min)/(t+1)); a float d gives
      l <- d*l + (1-d)*min.
    - `pow2_scale`: round every scale up to a power of two (shift-friendly hardware).
    - `preserve_zeros`: weights that are zero when quantized (pruned) stay zero, also through QAT.
    """

    w_bits: int | None = 8
    a_bits: int | None = 8
    per_channel: bool = True
    symmetric_weights: bool = True
    calibration: str = "minmax"
    percentile: float = 99.99
    ema_decay: float | None = None
    pow2_scale: bool = False
    preserve_zeros: bool = True

    def __post_init__(self) -> None:
        check_bits("w_bits", self.w_bits)
        check_bits("a_bits", self.a_bits)
        check_choice("calibration", self.calibration, CALIBRATIONS)
        check_percentile(self.percentile)
        check_ema_decay(self.ema_decay)
        for name in ("per_channel", "symmetric_weights", "pow2_scale", "preserve_zeros"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")


LAYER_FIELDS = tuple(field.name for field in fields(LayerQuant))


@dataclass(frozen=True)
class QuantConfig(LayerQuant):
    """How `quantize()` transforms a model (every LayerQuant field is the default for all layers).

    - `overrides`: {fnmatch pattern: {LayerQuant field: value}} for mixed precision, applied in order to
      matching module names, e.g. {"layer3.*": {"w_bits": 4}}. A conv/linear that reads the model input
      also quantizes that input with its own `a_bits`.
    - `exclude`: patterns of module names left in float.
    - `fold_bn`: fold each Conv2d -> BatchNorm2d pair into the conv first; the folded BN is frozen.
    - `quantize_input`: quantize the model input (needed for an integer graph).
    - `quantize_residuals`: quantize conv/BN outputs that feed additions or are block outputs (a conv, or
      conv -> BN, not followed by a ReLU / ReLU6 module; never the model's logits), and the input of every
      conv/linear that reads a tensor made by another op (a residual sum, a concatenation, a pooling);
      needed for fully-integer graphs (every conv then fuses into an integer kernel on export). The
      quantizer after a BN (or folded-BN identity) takes that module's settings; one after a conv without
      BN, or on a layer's input, the layer's.
    """

    fold_bn: bool = False
    quantize_input: bool = True
    quantize_residuals: bool = True
    overrides: Mapping[str, Mapping[str, Any]] | None = None
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("fold_bn", "quantize_input", "quantize_residuals"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if isinstance(self.exclude, str) or not all(isinstance(p, str) for p in self.exclude):
            raise ConfigError(f"exclude must be a list of module-name patterns, got {self.exclude!r}")
        object.__setattr__(self, "exclude", tuple(self.exclude))
        if self.overrides is not None and not isinstance(self.overrides, Mapping):
            raise ConfigError(f"overrides must map patterns to settings, got {self.overrides!r}")
        overrides = {}
        for pattern, settings in (self.overrides or {}).items():
            if not isinstance(settings, Mapping):
                raise ConfigError(f"overrides['{pattern}'] must be a dict of settings, got {settings!r}")
            unknown = sorted(set(settings) - set(LAYER_FIELDS))
            if unknown:
                raise ConfigError(
                    f"overrides['{pattern}'] has unknown setting {', '.join(unknown)}; "
                    f"use {', '.join(LAYER_FIELDS)}"
                )
            LayerQuant(**{**self._layer_defaults(), **settings})  # validates the values now
            overrides[str(pattern)] = dict(settings)
        object.__setattr__(self, "overrides", overrides if self.overrides is not None else None)

    def _layer_defaults(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in LAYER_FIELDS}

    def for_layer(self, name: str) -> LayerQuant | None:
        """The settings of module `name`, or None when an `exclude` pattern matches it."""
        if any(fnmatchcase(name, pattern) for pattern in self.exclude):
            return None
        settings = self._layer_defaults()
        for pattern, override in (self.overrides or {}).items():
            if fnmatchcase(name, pattern):
                settings.update(override)
        return LayerQuant(**settings)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for checkpoint metadata and --json output)."""
        data = asdict(self)
        data["exclude"] = list(self.exclude)
        return data
