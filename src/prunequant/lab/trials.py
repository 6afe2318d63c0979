"""Trials: one configuration each, identified by a stable hash, executed by the ONE function `run_trial`.

Every backend (local, Ray) calls `run_trial(task)`: it takes a picklable TrialTask (spec, recipe, input
checkpoints as bytes) and returns a TrialOutcome (metrics, extra, checkpoint bytes). It touches no file
of the run and no database: the driver alone writes those, so a worker needs no shared disk.
A trial kind is one function registered with `@register_kind("name")`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from prunequant.lab.recipe import Recipe
from prunequant.seeding import seed_everything
from prunequant.training import Callback
from prunequant.training.device import default_device

KIND_MODULES = (
    "prunequant.lab.compress",
    "prunequant.lab.sensitivity",
    "prunequant.lab.deploy",
    "prunequant.lab.structured",
    "prunequant.lab.joint",
    "prunequant.lab.iterative",
    "prunequant.lab.slimming",
    "prunequant.lab.layer_prune",
)
"""Modules whose import registers the trial kinds and step ops (a Ray worker imports only these)."""


def trial_id(stage: str, config: dict[str, Any]) -> str:
    """A stable 16-hex-digit hash of (stage, canonical JSON config)."""
    text = json.dumps({"stage": stage, "config": config}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TrialSpec:
    """One configuration to run: `config["kind"]` selects the trial function, `config["source"]` names the
    trial whose checkpoint it starts from ("profile" = the baseline)."""

    stage: str
    label: str
    config: dict[str, Any]

    @property
    def trial_id(self) -> str:
        return trial_id(self.stage, self.config)

    @property
    def kind(self) -> str:
        return self.config["kind"]

    @property
    def sources(self) -> list[str]:
        """Trial ids whose checkpoints this trial needs (config "source", or the list "sources")."""
        source = self.config.get("source")
        return [source] if source else list(self.config.get("sources", []))


@dataclass(frozen=True)
class TrialTask:
    """What a backend ships to a worker: the spec, the recipe and the input checkpoints (by trial id)."""

    spec: TrialSpec
    recipe: Recipe
    inputs: dict[str, bytes] = field(default_factory=dict)


@dataclass
class TrialOutcome:
    """What a trial returns: metric columns, stage-specific `extra`, optionally its checkpoint (a .pt, or
    e.g. an .onnx file: `suffix`) and further files kept under artifacts/<trial id>/."""

    metrics: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    checkpoint: bytes | None = None
    suffix: str = ".pt"
    files: dict[str, bytes] = field(default_factory=dict)
    duration_s: float | None = None


class TrialStopped(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised through training when a trial is stopped early (search pruner); carries what was measured."""

    def __init__(self, metrics: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
        super().__init__("trial stopped early")
        self.metrics = metrics
        self.extra = extra or {}


KindFn = Callable[[TrialTask, Sequence[Callback]], TrialOutcome]
_KINDS: dict[str, KindFn] = {}


def register_kind(name: str) -> Callable[[KindFn], KindFn]:
    """Register `fn(task, callbacks) -> TrialOutcome` as trial kind `name`."""

    def decorator(fn: KindFn) -> KindFn:
        _KINDS[name] = fn
        return fn

    return decorator


def run_trial(task: TrialTask, callbacks: Sequence[Callback] = ()) -> TrialOutcome:
    """Run one trial, seeded by (run seed, trial id) so its numbers do not depend on order or backend.

    `callbacks` join every training phase (live progress, the search's early stopping).
    """
    for module in KIND_MODULES:
        importlib.import_module(module)
    previous_threads = torch.get_num_threads()
    if task.recipe.run.threads:
        torch.set_num_threads(task.recipe.run.threads)
    seed_everything((task.recipe.run.seed + int(task.spec.trial_id[:8], 16)) % 2**31)
    start = time.perf_counter()
    try:
        with default_device(task.recipe.run.device):  # where the trial's Trainers train
            outcome = _KINDS[task.spec.kind](task, callbacks)
    finally:  # an in-process run leaves the caller's torch thread count as it found it
        torch.set_num_threads(previous_threads)
    outcome.duration_s = time.perf_counter() - start
    return outcome
