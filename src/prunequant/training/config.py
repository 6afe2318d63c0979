"""TrainConfig: the hyper-parameters of one training or fine-tuning phase, validated when built."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from prunequant.errors import ConfigError
from prunequant.validation import check_choice, check_fraction, check_int_range, check_positive

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("constant", "step", "cosine", "refine")
LR_SCHEDULES_HELP = (
    "LR schedule: constant, step, cosine, or refine (LR, then LR/10 from half-way) (default cosine)"
)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training phase.

    `lr_schedule="refine"` is the seeds' recipe in one phase: the first `refine_start` share of the epochs
    at `lr`, the rest at `lr * refine_factor` (LR then LR/10).
    """

    epochs: int = 10
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_schedule: str = "cosine"
    step_size: int = 10
    gamma: float = 0.1
    refine_factor: float = 0.1
    refine_start: float = 0.5
    batch_size: int = 128
    early_stopping_patience: int = 0
    max_batches_per_epoch: int = 0

    def __post_init__(self) -> None:
        check_int_range("epochs", self.epochs, 0, 100_000)
        check_positive("lr", self.lr)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_fraction("momentum", self.momentum)
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        check_int_range("step_size", self.step_size, 1, 100_000)
        check_positive("gamma", self.gamma)
        check_positive("refine_factor", self.refine_factor)
        check_fraction("refine_start", self.refine_start, allow_one=True)
        check_int_range("batch_size", self.batch_size, 1, 1_000_000)
        check_int_range("early_stopping_patience", self.early_stopping_patience, 0, 100_000)
        check_int_range("max_batches_per_epoch", self.max_batches_per_epoch, 0, 10**9)

    def to_dict(self) -> dict:
        return asdict(self)
