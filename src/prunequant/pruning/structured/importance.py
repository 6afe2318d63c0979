"""Channel importance criteria: one callable per criterion, registered by name.

A criterion maps (group, context) to one score per channel of the group (higher = keep), or None when it
does not apply to the group (then `l1` is used). Scores of the coupled layers of a group are combined by
`combine`: each layer's scores are divided by their mean, then summed, so no layer dominates by scale.
Add a criterion by writing one function and decorating it with `@register_importance(name)`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.pruning.structured.calibration import ActivationStats, collect_activation_stats
from prunequant.pruning.structured.groups import ChannelGroup, Member
from prunequant.tasks import Task


@dataclass
class ImportanceContext:
    """What criteria may read: the model, its layers, and (lazily gathered) calibration statistics.

    `task` (default classification) splits the calibration batches and gives the loss of `taylor`.
    """

    model: nn.Module
    groups: list[ChannelGroup]
    calib_loader: Iterable | None = None
    calib_batches: int = 8
    seed: int = 0
    task: Task | None = None
    modules: dict[str, nn.Module] = field(init=False, repr=False)
    _stats: ActivationStats | None = field(default=None, init=False, repr=False)
    _taylor: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.modules = dict(self.model.named_modules())

    def activations(self, *, taylor: bool = False) -> ActivationStats:
        """Statistics at the inputs of every consumer layer of the groups (computed once per context)."""
        if self._stats is None or (taylor and not self._taylor):
            if self.calib_loader is None:
                raise ConfigError("this importance needs data: pass calib_loader (CLI: --dataset)")
            names = [member.module for group in self.groups for member in group.consumers]
            self._stats = collect_activation_stats(
                self.model,
                names,
                self.calib_loader,
                max_batches=self.calib_batches,
                taylor=taylor,
                task=self.task,
            )
            self._taylor = taylor
        return self._stats


ImportanceFn = Callable[[ChannelGroup, ImportanceContext], "torch.Tensor | None"]


@dataclass(frozen=True)
class Importance:
    """A registered criterion; `needs_data` ones read calibration batches."""

    name: str
    fn: ImportanceFn
    needs_data: bool


_IMPORTANCES: dict[str, Importance] = {}


def register_importance(name: str, *, needs_data: bool = False) -> Callable[[ImportanceFn], ImportanceFn]:
    """Decorator adding a channel-pruning criterion under `name` (then `importance=name` everywhere).

    Parameters
    ----------
    name:
        The criterion's name; registering a name again replaces it.
    needs_data:
        True when `fn` reads calibration batches (`context.activations()`); callers must then pass a
        calib_loader.

    Returns
    -------
    A decorator for `fn(group: ChannelGroup, context: ImportanceContext) -> scores | None`: a float tensor
    of `group.channels` scores (higher is kept), or None where the criterion does not apply (l1 is used).
    """

    def decorator(fn: ImportanceFn) -> ImportanceFn:
        _IMPORTANCES[name] = Importance(name, fn, needs_data)
        return fn

    return decorator


def available_importances() -> list[str]:
    return sorted(_IMPORTANCES)


def get_importance(name: str) -> Importance:
    """The criterion registered as `name`, or a ConfigError listing the known ones."""
    if name not in _IMPORTANCES:
        raise ConfigError(f"unknown importance {name!r}; choose one of {', '.join(available_importances())}")
    return _IMPORTANCES[name]


def combine(group: ChannelGroup, per_member: dict[Member, torch.Tensor]) -> torch.Tensor | None:
    """Sum over members of per-channel scores (each reduced, then divided by its mean)."""
    total = None
    for member, values in per_member.items():
        scores = member.reduce(values.detach().double(), group.channels)
        mean = scores.mean()
        scores = scores / mean if mean > 0 else scores
        total = scores if total is None else total + scores
    return total


def group_scores(name: str, group: ChannelGroup, context: ImportanceContext) -> torch.Tensor:
    """Scores of `group` by criterion `name`, falling back to `l1` where the criterion does not apply."""
    scores = get_importance(name).fn(group, context)
    if scores is None:
        scores = _IMPORTANCES["l1"].fn(group, context)
    if scores is None:
        return torch.ones(group.channels, dtype=torch.float64)
    return scores


def _weighted(group: ChannelGroup, context: ImportanceContext) -> list[tuple[Member, torch.Tensor]]:
    """(member, weight) of each conv/linear whose outputs are the group's channels."""
    found = []
    for member in group.producers:
        module = context.modules[member.module]
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            found.append((member, module.weight.detach()))
    return found


@register_importance("l1")
def l1_norm(group: ChannelGroup, context: ImportanceContext) -> torch.Tensor | None:
    """L1 norm of each output filter / neuron (Li et al. 2017)."""
    return combine(group, {m: w.abs().flatten(1).sum(1) for m, w in _weighted(group, context)})


@register_importance("l2")
def l2_norm(group: ChannelGroup, context: ImportanceContext) -> torch.Tensor | None:
    """L2 norm of each output filter / neuron."""
    return combine(group, {m: w.flatten(1).norm(dim=1) for m, w in _weighted(group, context)})


@register_importance("bn_gamma")
def bn_gamma(group: ChannelGroup, context: ImportanceContext) -> torch.Tensor | None:
    """|gamma| of the group's BatchNorm layers (network slimming, seed 004 formula 1); None without BN."""
    per_member = {}
    for member in group.producers:
        module = context.modules[member.module]
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.weight is not None:
            per_member[member] = module.weight.detach().abs()
    return combine(group, per_member)


def _from_inputs(group: ChannelGroup, stats: dict[str, torch.Tensor]) -> torch.Tensor | None:
    return combine(group, {m: stats[m.module] for m in group.consumers if m.module in stats})


@register_importance("activation_l1", needs_data=True)
def activation_l1(group: ChannelGroup, context: ImportanceContext) -> torch.Tensor | None:
    """Moving average of the per-channel mean |activation| fed to the next layers (seed 003 Alg. 1)."""
    return _from_inputs(group, context.activations().l1)


@register_importance("apoz", needs_data=True)
def apoz(group: ChannelGroup, context: ImportanceContext) -> torch.Tensor | None:
    """1 - APoZ: the share of non-zero activations after ReLU (seed 004 formula 2; low APoZ = important)."""
    stats = context.activations().zeros
    return _from_inputs(group, {name: 1.0 - zeros for name, zeros in stats.items()})


@register_importance("taylor", needs_data=True)
def taylor(group: ChannelGroup, context: ImportanceContext) -> torch.Tensor | None:
    """First-order Taylor |activation x gradient| of the task loss (Molchanov et al. 2017); needs targets."""
    return _from_inputs(group, context.activations(taylor=True).taylor)


@register_importance("random")
def random_scores(group: ChannelGroup, context: ImportanceContext) -> torch.Tensor:
    """Uniform random scores, seeded by the context seed and the group name (a baseline)."""
    generator = torch.Generator().manual_seed(context.seed * 1_000_003 + zlib.crc32(group.name.encode()))
    return torch.rand(group.channels, generator=generator, dtype=torch.float64)
