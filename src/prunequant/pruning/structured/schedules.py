"""Pruning schedules as Trainer callbacks (seed 003 section 5.1): one-shot, stepwise, greedy layerwise,
and training the pruned architecture from scratch.

Each prune physically rewrites `trainer.model` in place (same module objects, smaller parameters), then
`reset_optimizer` rebuilds `trainer.optimizer` and `trainer.scheduler` over the new parameters, keeping the
current epoch's learning rate (momentum buffers restart from zero). Data-driven importance and the
sensitivity allocation read their batches through the Trainer's task, so any task and any number of model
inputs work; `example_input` may be a tensor, a tuple or a dict of tensors.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from torch import nn

from prunequant.models.layers import init_conv_weights
from prunequant.pruning.structured.allocation import keep_count, uniform_keep
from prunequant.pruning.structured.graph import dependency_groups
from prunequant.pruning.structured.groups import ChannelGroup
from prunequant.pruning.structured.prune import ChannelPruneConfig, StructuredPruneResult, prune_channels_
from prunequant.seeding import seed_everything
from prunequant.tasks import Inputs
from prunequant.training import Callback, Trainer
from prunequant.training.lr_schedules import build_optimizer, build_scheduler, lr_factor
from prunequant.validation import check_fraction, check_int_range


def reset_optimizer(trainer: Trainer) -> None:
    """Rebuild the trainer's optimizer and LR scheduler over the model's current parameters, at its epoch."""
    trainer.optimizer = build_optimizer(trainer.model, trainer.config)
    trainer.scheduler = build_scheduler(trainer.optimizer, trainer.config)
    trainer.scheduler.last_epoch = trainer.epoch
    for group in trainer.optimizer.param_groups:
        group["lr"] = group["initial_lr"] * lr_factor(trainer.config, trainer.epoch)


class _PruningCallback(Callback):
    """Shared state: the example input, the options, calibration data and the prune results so far."""

    def __init__(
        self, example_input: Inputs, config: ChannelPruneConfig, calib_loader: Iterable | None = None
    ) -> None:
        self.example_input = example_input
        self.config = config
        self.calib_loader = calib_loader
        self.results: list[StructuredPruneResult] = []
        self.step = 0
        """Optimizer steps seen, across every Trainer this callback is given to (fine-tune, then refine)."""

    def prune(self, trainer: Trainer, keep_fn=None) -> None:
        loader = self.calib_loader if self.calib_loader is not None else trainer.train_loader
        self.results.append(
            prune_channels_(
                trainer.model,
                self.example_input,
                self.config,
                calib_loader=loader,
                keep_fn=keep_fn,
                task=trainer.task,
            )
        )
        reset_optimizer(trainer)


class OneShotPruning(_PruningCallback):
    """Prune to `config.amount` once when (the first) training starts; the rest of training fine-tunes."""

    def on_train_start(self, trainer: Trainer) -> None:
        if not self.results:
            self.prune(trainer)


class StepwisePruning(_PruningCallback):
    """Zhu & Gupta's cubic ramp of the channel amount, pruning physically every `frequency` optimizer steps.

    s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * frequency))^3 for t in [t0, t0 + n * frequency], where
    s_f = config.amount; each group's keep count is taken from its channel count before training.
    """

    def __init__(
        self,
        example_input: Inputs,
        config: ChannelPruneConfig,
        *,
        steps: int,
        frequency: int = 1,
        start_step: int = 0,
        initial_amount: float = 0.0,
        calib_loader: Iterable | None = None,
    ) -> None:
        super().__init__(example_input, config, calib_loader)
        self.steps = check_int_range("steps", steps, 1, 10**9)
        self.frequency = check_int_range("frequency", frequency, 1, 10**9)
        self.start_step = check_int_range("start_step", start_step, 0, 10**9)
        self.initial_amount = check_fraction("initial_amount", initial_amount)
        self.original: dict[str, int] = {}

    def amount_at(self, step: int) -> float:
        """Target amount after optimizer step `step` (0 before the ramp, s_f after it)."""
        if step < self.start_step:
            return 0.0
        progress = min(1.0, (step - self.start_step) / (self.steps * self.frequency))
        final = self.config.amount
        return final + (self.initial_amount - final) * (1.0 - progress) ** 3

    def on_train_start(self, trainer: Trainer) -> None:
        if not self.original:
            graph = dependency_groups(trainer.model, self.example_input)
            self.original = {group.name: group.channels for group in graph.prunable}
            self.original.update({region.name: sum(region.widths.values()) for region in graph.regions})

    def on_batch_end(self, trainer: Trainer, batch: int, loss: float) -> None:
        self.step += 1
        step = self.step
        end = self.start_step + self.steps * self.frequency
        if step < self.start_step or step > end or (step - self.start_step) % self.frequency:
            return
        amount = self.amount_at(step)

        def keep(groups: list[ChannelGroup], scores: dict) -> dict[str, int]:
            keeps = {}
            for group in groups:
                original = self.original.get(group.name, group.channels)
                target = keep_count(
                    original,
                    original * (1.0 - amount),
                    round_to=self.config.round_to,
                    min_channels=self.config.min_channels,
                    blocks=group.blocks,
                )
                keeps[group.name] = min(group.channels, target)
            return keeps

        self.prune(trainer, keep)


class LayerwisePruning(_PruningCallback):
    """Greedy layerwise pruning (seed 003 Alg. 1): group i loses `config.amount` at step i * `interval`,
    in forward order, while all weights keep training; scores come from `config.importance`
    (seed 003 uses `activation_l1`, measured on the training batches unless `calib_loader` is given)."""

    def __init__(
        self,
        example_input: Inputs,
        config: ChannelPruneConfig,
        *,
        interval: int,
        calib_loader: Iterable | None = None,
    ) -> None:
        super().__init__(example_input, config, calib_loader)
        self.interval = check_int_range("interval", interval, 1, 10**9)
        self.order: list[str] = []
        self.done: list[str] = []

    def on_train_start(self, trainer: Trainer) -> None:
        if not self.order:
            graph = dependency_groups(trainer.model, self.example_input)
            self.order = [group.name for group in graph.prunable if not self.config.ignores(group)]
            self.order += [region.name for region in graph.regions]  # routed regions: one step each

    def on_batch_end(self, trainer: Trainer, batch: int, loss: float) -> None:
        self.step += 1
        index = self.step // self.interval - 1
        if self.step % self.interval or not 0 <= index < len(self.order):
            return
        current = self.order[index]

        def keep(groups: list[ChannelGroup], scores: dict) -> dict[str, int]:
            options = {"round_to": self.config.round_to, "min_channels": self.config.min_channels}
            return {
                group.name: uniform_keep(group, self.config.amount, **options)
                if group.name == current
                else group.channels
                for group in groups
            }

        self.prune(trainer, keep)
        self.done.append(current)


def reinitialize(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of `model` (e.g. a pruned architecture) with freshly initialised weights, to train from scratch.

    Every layer's reset_parameters() runs (BN statistics too), then convs get the zoo's He init.
    """
    seed_everything(seed)
    fresh = copy.deepcopy(model)
    for module in fresh.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return init_conv_weights(fresh)
