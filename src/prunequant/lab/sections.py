"""The recipe's stage sections: frozen dataclasses validated in __post_init__ (messages start with the key).

A stage runs when its table is present in the recipe. Fine-tune lengths and LRs left out default to the
[baseline] training hyper-parameters: fine-tune at the original LR, then refine-tune at LR * refine_factor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prunequant.errors import ConfigError
from prunequant.validation import check_choice, check_fraction, check_int_range, check_positive

SCOPES = ("global", "layer")
OBJECTIVES = ("size", "latency")
GRANULARITIES = ("tensor", "channel")
SCHEDULES = ("one-shot", "stepwise", "layerwise", "from-scratch")
ALLOCATIONS = ("global", "layer", "sensitivity")
MAX_BITS = 32
"""32 bits = float, unquantized."""
QUANT_BITS = 16
"""The widest integer grid prunequant.quantization simulates."""


def check_amounts(name: str, values: Sequence[float]) -> None:
    """A non-empty list whose every value is a fraction in [0, 1)."""
    if not values:
        raise ConfigError(f"{name} must list at least one amount, e.g. [0.1, 0.2]")
    for index, value in enumerate(values):
        check_fraction(f"{name}[{index}]", value)


def check_bits(name: str, values: Sequence[int], *, allow_float: bool = False) -> None:
    """Every value an integer bit width in 2..16 (or 32 = float, with `allow_float`)."""
    if not values:
        raise ConfigError(f"{name} must list at least one bit width, e.g. [8, 6]")
    for index, value in enumerate(values):
        if not (allow_float and value == MAX_BITS):
            check_int_range(f"{name}[{index}]", value, 2, QUANT_BITS)


def check_choices(name: str, values: Sequence[str], choices: Sequence[str]) -> None:
    """A non-empty list whose every value is one of `choices`."""
    if not values:
        raise ConfigError(f"{name} must list at least one of {', '.join(choices)}")
    for index, value in enumerate(values):
        check_choice(f"{name}[{index}]", value, tuple(choices))


def check_optional_epochs(name: str, value: int | None) -> None:
    if value is not None:
        check_int_range(name, value, 0, 100_000)


@dataclass(frozen=True)
class Finetune:
    """Fine-tune `epochs` at each of `lrs`, then `refine_epochs` at lr * refine_factor (None: [baseline])."""

    epochs: int | None = None
    refine_epochs: int | None = None
    lrs: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        check_optional_epochs("epochs", self.epochs)
        check_optional_epochs("refine_epochs", self.refine_epochs)
        for index, lr in enumerate(self.lrs):
            check_positive(f"lrs[{index}]", lr)


@dataclass(frozen=True)
class ProfileSection:
    """Seed 000 Table I: profile the original model; latency at `batch_size` over `repeats` runs."""

    batch_size: int = 1
    repeats: int = 20

    def __post_init__(self) -> None:
        check_int_range("batch_size", self.batch_size, 1, 1 << 16)
        check_int_range("repeats", self.repeats, 1, 100_000)


@dataclass(frozen=True)
class PruneSweep:
    """Magnitude pruning at each amount, no retraining (seed 000 'post', seed 002); biases too if asked."""

    amounts: tuple[float, ...] = ()
    scope: str = "global"
    include_bias: bool = False

    def __post_init__(self) -> None:
        check_amounts("amounts", self.amounts)
        check_choice("scope", self.scope, SCOPES)


@dataclass(frozen=True)
class AwarePruneSweep(PruneSweep, Finetune):
    """Magnitude pruning at each amount, then masked fine-tune and refine-tune (seed 000 'aware')."""

    def __post_init__(self) -> None:
        PruneSweep.__post_init__(self)
        Finetune.__post_init__(self)


@dataclass(frozen=True)
class QuantSweep:
    """Uniform weight quantization at each bit width (activations at `a_bits`; 32 keeps them float)."""

    bits: tuple[int, ...] = ()
    a_bits: int = 32
    granularity: str = "tensor"
    calib_batches: int = 4

    def __post_init__(self) -> None:
        check_bits("bits", self.bits)
        check_bits("a_bits", [self.a_bits], allow_float=True)
        check_choice("granularity", self.granularity, GRANULARITIES)
        check_int_range("calib_batches", self.calib_batches, 1, 100_000)


@dataclass(frozen=True)
class AwareQuantSweep(QuantSweep, Finetune):
    """Quantization-aware fine-tune (fake-quant, straight-through) at each bit width, then refine."""

    def __post_init__(self) -> None:
        QuantSweep.__post_init__(self)
        Finetune.__post_init__(self)


@dataclass(frozen=True)
class CombineSection:
    """Seed 000 'combine the best': the largest amount and fewest bits within budget, applied together.

    `source` picks the sweeps the levels come from ("aware" or "post"); then fine-tune `epochs` at the
    baseline LR and refine-tune `refine_epochs` (default: the baseline's) at LR * refine_factor.
    """

    source: str = "aware"
    epochs: int = 0
    refine_epochs: int | None = None

    def __post_init__(self) -> None:
        check_choice("source", self.source, ("aware", "post"))
        check_int_range("epochs", self.epochs, 0, 100_000)
        check_optional_epochs("refine_epochs", self.refine_epochs)


@dataclass(frozen=True)
class StructuredSection(Finetune):
    """Seed 003: channel pruning x weight/activation bits x schedule, then fine-tune.

    `formats` are 'fp32' or 'wXaY' (e.g. w8a8, w4a8, w4a4; a32 keeps activations float).
    """

    amounts: tuple[float, ...] = ()
    importance: tuple[str, ...] = ("l1",)
    formats: tuple[str, ...] = ("fp32",)
    schedules: tuple[str, ...] = ("one-shot",)
    round_to: int = 1
    steps: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        check_amounts("amounts", self.amounts)
        from prunequant.pruning.structured import available_importances

        check_choices("importance", self.importance, available_importances())
        for index, text in enumerate(self.formats):
            parse_format(f"formats[{index}]", text)
        check_choices("schedules", self.schedules, SCHEDULES)
        check_int_range("round_to", self.round_to, 1, 4096)
        check_int_range("steps", self.steps, 1, 1000)


def parse_format(name: str, text: str) -> tuple[int, int]:
    """'fp32' -> (32, 32); 'w4a8' -> (4, 8); anything else is a ConfigError naming `name`."""
    if text == "fp32":
        return MAX_BITS, MAX_BITS
    try:
        w_text, a_text = text.lower().removeprefix("w").split("a")
        w_bits, a_bits = int(w_text), int(a_text)
    except ValueError:
        raise ConfigError(f"{name} must be 'fp32' or like 'w8a8', got {text!r}") from None
    check_bits(f"{name} weight bits", [w_bits], allow_float=True)
    check_bits(f"{name} activation bits", [a_bits], allow_float=True)
    return w_bits, a_bits


@dataclass(frozen=True)
class SensitivitySection:
    """Per-layer sensitivity: prune / quantize one layer at a time and measure validation accuracy."""

    amounts: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)
    bits: tuple[int, ...] = (8, 6, 4, 3)
    max_batches: int = 0

    def __post_init__(self) -> None:
        check_amounts("amounts", self.amounts)
        check_bits("bits", self.bits)
        check_int_range("max_batches", self.max_batches, 0, 10**9)


@dataclass(frozen=True)
class SearchSection:
    """Optuna TPE search for the smallest or fastest model within the accuracy budget.

    Space: channel amount (structured, for latency), unstructured amount up to `max_amount` with an
    allocation, weight bits per top-level module group, fine-tune epochs. `slack` x budget is the
    intermediate accuracy drop beyond which the pruner stops a trial early.
    """

    trials: int = 20
    objective: str | None = None
    max_amount: float = 0.9
    channel_amounts: tuple[float, ...] = (0.0,)
    bits: tuple[int, ...] = (32, 8)
    epochs: tuple[int, ...] = (1,)
    allocations: tuple[str, ...] = ("global",)
    parallel: int = 1
    slack: float = 3.0

    def __post_init__(self) -> None:
        check_int_range("trials", self.trials, 1, 100_000)
        if self.objective is not None:
            check_choice("objective", self.objective, OBJECTIVES)
        check_fraction("max_amount", self.max_amount)
        check_amounts("channel_amounts", self.channel_amounts)
        check_bits("bits", self.bits, allow_float=True)
        if not self.epochs:
            raise ConfigError("epochs must list at least one fine-tune length, e.g. [0, 1]")
        for index, value in enumerate(self.epochs):
            check_int_range(f"epochs[{index}]", value, 0, 100_000)
        check_choices("allocations", self.allocations, ALLOCATIONS)
        check_int_range("parallel", self.parallel, 1, 1024)
        check_positive("slack", self.slack)


@dataclass(frozen=True)
class ExportSection:
    """Export the baseline and the best models to ONNX (fp32 and int8 QDQ) and time them in onnxruntime."""

    int8: bool = True
    calib_batches: int = 4

    def __post_init__(self) -> None:
        check_int_range("calib_batches", self.calib_batches, 1, 100_000)


@dataclass(frozen=True)
class BenchSection:
    """Interleaved latency (A B A B, medians) of the best models against the baseline, per batch size."""

    batch_sizes: tuple[int, ...] = (1, 32)
    repeats: int = 10
    rounds: int = 5

    def __post_init__(self) -> None:
        if not self.batch_sizes:
            raise ConfigError("batch_sizes must list at least one batch size, e.g. [1, 32]")
        for index, value in enumerate(self.batch_sizes):
            check_int_range(f"batch_sizes[{index}]", value, 1, 1 << 16)
        check_int_range("repeats", self.repeats, 1, 100_000)
        check_int_range("rounds", self.rounds, 1, 1000)
