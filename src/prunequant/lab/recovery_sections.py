"""The recipe tables of accuracy recovery: [finetune] (options of every fine-tune of the lab) and the
[joint] and [iterative] stages."""

from __future__ import annotations

from dataclasses import dataclass

from prunequant.errors import ConfigError
from prunequant.lab.sections import Finetune, check_amounts, parse_format
from prunequant.training import DISTILL_KINDS
from prunequant.validation import check_choice, check_fraction, check_int_range, check_positive


@dataclass(frozen=True)
class FinetuneSection:
    """Knowledge distillation from the original model, BN recalibration and early stopping.

    They apply to every fine-tune a stage runs (aware sweeps, combine, structured, joint, iterative,
    search), QAT included. `distill_weight` is the share of the distillation term in the loss,
    `distill_kind` one of auto, kl, mse, l1 (auto: KL on logits for classification and segmentation, MSE
    otherwise), `distill_features` module names whose outputs are matched too (same shape in both models),
    `early_stop_patience` epochs without a better validation score on the task's primary metric (0: off),
    `bn_recalibrate` re-estimates BatchNorm statistics on `bn_batches` training batches before training.
    """

    distill: bool = False
    distill_weight: float = 0.5
    distill_temperature: float = 4.0
    distill_kind: str = "auto"
    distill_features: tuple[str, ...] = ()
    early_stop_patience: int = 0
    bn_recalibrate: bool = False
    bn_batches: int = 20

    def __post_init__(self) -> None:
        check_fraction("distill_weight", self.distill_weight, allow_one=True)
        check_positive("distill_temperature", self.distill_temperature)
        check_choice("distill_kind", self.distill_kind, DISTILL_KINDS)
        if self.distill_features and not self.distill:
            raise ConfigError("distill_features needs distill = true")
        check_int_range("early_stop_patience", self.early_stop_patience, 0, 100_000)
        check_int_range("bn_batches", self.bn_batches, 1, 100_000)


def _check_importance(name: str, value: str) -> None:
    from prunequant.pruning.structured import available_importances

    check_choice(name, value, available_importances())


@dataclass(frozen=True)
class JointSection(Finetune):
    """Seed 003's joint pipeline: greedy layerwise channel pruning by `importance` (activation L1, Alg. 1)
    during `epochs` of fine-tuning at the LR, then quantization to each of `formats` ('wXaY', per-channel
    weights) and quantization-aware training: `qat_epochs` (default: `epochs`) at the LR, then
    `refine_epochs` at LR * refine_factor. One trial per LR x amount x format.
    """

    amounts: tuple[float, ...] = ()
    formats: tuple[str, ...] = ("w8a8",)
    importance: str = "activation_l1"
    qat_epochs: int | None = None
    round_to: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_amounts("amounts", self.amounts)
        if not self.formats:
            raise ConfigError("formats must list at least one format, e.g. ['w8a8']")
        for index, text in enumerate(self.formats):
            if parse_format(f"formats[{index}]", text) == (32, 32):
                raise ConfigError(f"formats[{index}] must quantize (the pipeline ends in QAT), got {text!r}")
        _check_importance("importance", self.importance)
        if self.qat_epochs is not None:
            check_int_range("qat_epochs", self.qat_epochs, 0, 100_000)
        check_int_range("round_to", self.round_to, 1, 4096)
        if self.epochs == 0:
            raise ConfigError("epochs must be at least 1: the layerwise schedule prunes while fine-tuning")


@dataclass(frozen=True)
class IterativeSection(Finetune):
    """Iterative channel pruning (NNCF's and Torch-Pruning's usual path): each step removes `step` of the
    channels that remain (by `importance`), then fine-tunes `epochs` at the LR and `refine_epochs` at
    LR * refine_factor; it stops when the MACs are `target_macs_reduction` lower than the original's
    and/or the measured speedup reaches `target_speedup` (0 = not a target; both set: both needed),
    when the accuracy budget is broken, or after `max_steps`. Each step is one trial.
    """

    step: float = 0.1
    target_macs_reduction: float = 0.0
    target_speedup: float = 0.0
    max_steps: int = 10
    importance: str = "l1"
    round_to: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction("step", self.step)
        if self.step == 0:
            raise ConfigError("step must be in (0, 1), e.g. 0.1 removes a tenth of the channels per step")
        check_fraction("target_macs_reduction", self.target_macs_reduction)
        if self.target_speedup < 0 or (0 < self.target_speedup <= 1):
            raise ConfigError(f"target_speedup must be above 1 (or 0: no target), got {self.target_speedup}")
        if not self.target_macs_reduction and not self.target_speedup:
            raise ConfigError("target_macs_reduction or target_speedup is required, e.g. 0.5 (half the MACs)")
        check_int_range("max_steps", self.max_steps, 1, 1000)
        _check_importance("importance", self.importance)
        check_int_range("round_to", self.round_to, 1, 4096)
