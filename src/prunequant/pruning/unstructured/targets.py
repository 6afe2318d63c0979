"""Which tensors magnitude pruning touches: conv/linear weights (and biases), minus exclusions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from torch import nn

from prunequant.errors import ConfigError
from prunequant.pruning.unstructured.config import UnstructuredConfig

PRUNABLE_TYPES: tuple[type[nn.Module], ...] = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
)


@dataclass(frozen=True)
class Target:
    """One prunable tensor: `module.<param>`, known to the user as `name` (its state_dict key)."""

    name: str
    module_name: str
    module: nn.Module
    param: str
    amount: float | None = None  # a per-layer override; None follows the config's amount and scope


@dataclass(frozen=True)
class Selection:
    """The tensors to prune, and the layers left dense by `keep_first_last` or `exclude`."""

    targets: list[Target]
    kept: list[str]
    excluded: list[str]


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every conv / linear layer, in registration order."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, PRUNABLE_TYPES)]


def candidate_tensors(model: nn.Module, include_bias: bool) -> list[Target]:
    """Every conv/linear weight (and bias with `include_bias`) as a Target, in registration order."""
    params = ("weight", "bias") if include_bias else ("weight",)
    found = []
    for module_name, module in prunable_layers(model):
        for param in params:
            if getattr(module, param, None) is not None:
                found.append(Target(_join(module_name, param), module_name, module, param))
    return found


def first_and_last(model: nn.Module) -> list[str]:
    """Names of the first conv/linear layer and the last linear layer (registration order)."""
    layers = prunable_layers(model)
    if not layers:
        return []
    linears = [name for name, module in layers if isinstance(module, nn.Linear)]
    return list(dict.fromkeys([layers[0][0], linears[-1] if linears else layers[-1][0]]))


def select_targets(model: nn.Module, config: UnstructuredConfig) -> Selection:
    """Resolve `config`'s exclusions, overrides and keep_first_last against `model`'s layers.

    Patterns match module names or parameter names (fnmatch); when several overrides match, the last wins.
    A pattern that matches nothing is an error, so typos do not silently prune the wrong layers.
    """
    candidates = candidate_tensors(model, config.include_bias)
    if not candidates:
        raise ConfigError("the model has no conv or linear weights to prune")
    kept = first_and_last(model) if config.keep_first_last else []
    _check_patterns(candidates, [*config.exclude, *config.overrides])
    targets, excluded = [], []
    for target in candidates:
        if target.module_name in kept:
            continue
        if _matches(target, config.exclude):
            excluded.append(target.name)
            continue
        matching = [pattern for pattern in config.overrides if _matches(target, [pattern])]
        amount = config.overrides[matching[-1]] if matching else None
        targets.append(Target(target.name, target.module_name, target.module, target.param, amount))
    return Selection(targets, kept, excluded)


def _matches(target: Target, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(target.module_name, p) or fnmatchcase(target.name, p) for p in patterns)


def _check_patterns(candidates: list[Target], patterns: list[str]) -> None:
    for pattern in patterns:
        if not any(_matches(target, [pattern]) for target in candidates):
            names = ", ".join(dict.fromkeys(target.module_name for target in candidates[:6]))
            raise ConfigError(
                f"pattern {pattern!r} matches no conv/linear layer; layer names look like: {names}, ..."
            )


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
