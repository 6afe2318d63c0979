"""Pruning schedules as Trainer callbacks: one-shot, iterative (Han et al.) and gradual AGP (Zhu & Gupta).

Each schedule is a MaskCallback that also prunes at its own moments; the schedule counts epochs and
batches itself, so it keeps going across the Trainers of finetune_then_refine (fine-tune, then refine).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prunequant.errors import ConfigError
from prunequant.pruning.unstructured.callbacks import MaskCallback
from prunequant.pruning.unstructured.config import UnstructuredConfig
from prunequant.pruning.unstructured.magnitude import PruneResult, apply_pruning
from prunequant.validation import check_fraction, check_int_range

if TYPE_CHECKING:
    from prunequant.training import Trainer

SCHEDULES = ("oneshot", "iterative", "agp")


def iterative_sparsity(round_index: int, rounds: int, final: float) -> float:
    """Sparsity after round `round_index` (0-based) of `rounds`: each round prunes the same share of what
    is left, 1 - (1 - final) ** ((round_index + 1) / rounds), reaching `final` in the last round."""
    return 1.0 - (1.0 - final) ** ((round_index + 1) / rounds)


def agp_sparsity(step: int, initial: float, final: float, start: int, steps: int, interval: int) -> float:
    """Zhu & Gupta: s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3, clamped to [t0, t0 + n*dt]."""
    progress = min(max(step - start, 0), steps * interval) / (steps * interval)
    return final + (initial - final) * (1.0 - progress) ** 3


class MagnitudeSchedule(MaskCallback):
    """A MaskCallback that prunes to `config` amounts at scheduled moments; `events` logs (when, amount)."""

    def __init__(self, config: UnstructuredConfig) -> None:
        self.config = config
        self.result: PruneResult | None = None
        self.events: list[tuple[int, float]] = []

    def prune_to(self, trainer: Trainer, when: int, amount: float) -> None:
        self.result = apply_pruning(trainer.model, self.config.with_amount(amount))
        self.events.append((when, amount))


class OneShotMagnitudePruning(MagnitudeSchedule):
    """Prune to `config.amount` once, when training starts, then keep the masks while fine-tuning."""

    def on_train_start(self, trainer: Trainer) -> None:
        if self.result is None:
            self.prune_to(trainer, 0, self.config.amount)


class IterativeMagnitudePruning(MagnitudeSchedule):
    """Han et al.: prune -> retrain -> prune more, over `rounds` rounds of `epochs_per_round` epochs each,
    following `iterative_sparsity` up to `config.amount`."""

    def __init__(self, config: UnstructuredConfig, rounds: int, epochs_per_round: int = 1) -> None:
        super().__init__(config)
        self.rounds = check_int_range("rounds", rounds, 1, 10_000)
        self.epochs_per_round = check_int_range("epochs_per_round", epochs_per_round, 1, 100_000)
        self.epochs_seen = 0

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        round_index, offset = divmod(self.epochs_seen, self.epochs_per_round)
        if offset == 0 and round_index < self.rounds:
            self.prune_to(
                trainer, self.epochs_seen, iterative_sparsity(round_index, self.rounds, self.config.amount)
            )
        self.epochs_seen += 1


class AGPMagnitudePruning(MagnitudeSchedule):
    """Automated gradual pruning: from `initial` to `config.amount` over `steps` prunings, one every
    `interval` batches from batch `start` (counted by the schedule across Trainers)."""

    def __init__(
        self, config: UnstructuredConfig, steps: int, interval: int, *, initial: float = 0.0, start: int = 0
    ) -> None:
        super().__init__(config)
        self.steps = check_int_range("steps", steps, 1, 10**9)
        self.interval = check_int_range("interval", interval, 1, 10**9)
        self.initial = check_fraction("initial", initial)
        self.start = check_int_range("start", start, 0, 10**12)
        if self.initial > config.amount:
            raise ConfigError(f"AGP initial sparsity {initial} exceeds the final amount {config.amount}")
        self.batches_seen = 0

    def sparsity_at(self, step: int) -> float:
        return agp_sparsity(step, self.initial, self.config.amount, self.start, self.steps, self.interval)

    def on_batch_start(self, trainer: Trainer, batch: int) -> None:
        t = self.batches_seen
        if (
            self.start <= t <= self.start + self.steps * self.interval
            and (t - self.start) % self.interval == 0
        ):
            self.prune_to(trainer, t, self.sparsity_at(t))
        self.batches_seen += 1


def make_schedule(
    name: str, config: UnstructuredConfig, *, steps: int = 3, epochs: int = 1, batches_per_epoch: int = 1
) -> MagnitudeSchedule:
    """Build the schedule `name` for a fine-tune of `epochs` epochs of `batches_per_epoch` batches.

    iterative: `steps` rounds spread over the epochs (needs epochs >= steps); agp: `steps` prunings spread
    over the first half of the batches, leaving the second half to recover at the final sparsity.
    """
    if name == "oneshot":
        return OneShotMagnitudePruning(config)
    if name == "iterative":
        if epochs < steps:
            raise ConfigError(
                f"iterative pruning over {steps} rounds needs at least {steps} fine-tune epochs"
            )
        return IterativeMagnitudePruning(config, steps, epochs // steps)
    if name == "agp":
        if epochs * batches_per_epoch < steps + 1:
            raise ConfigError(f"AGP over {steps} steps needs at least {steps + 1} fine-tune batches")
        interval = max(1, (epochs * batches_per_epoch) // (2 * steps))
        return AGPMagnitudePruning(config, steps, interval)
    raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}; got {name!r}")
