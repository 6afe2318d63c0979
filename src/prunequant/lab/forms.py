"""A candidate's deployable forms: each applicable runtime's file, scored and timed in this trial.

For every runtime of prunequant.lab.runtimes that applies to the model, the file is written, loaded back
and scored on the task's metrics (the file's own accuracy, not the PyTorch model's), then all forms are
timed interleaved against the ORIGINAL in torch eager fp32 at batch 1 and the recipe's deploy batch
(prunequant.lab.speed). The recipe's `[run] runtimes` say which runtimes are tried. Each form is run once
per batch size first (a compiled runtime compiles there; `first_call_s`). A form whose export, load,
first run or scoring fails is listed with its error, never dropped silently; the other forms still count.
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from prunequant.errors import PrunequantError
from prunequant.export.bench import Candidate, torch_candidate
from prunequant.lab.env import Env
from prunequant.lab.recipe import Recipe
from prunequant.lab.runtimes import NO_SPEED_GAIN, ModelKind, runtimes_for
from prunequant.lab.speed import Conditions, Speed, first_calls, measure_speeds

CALIB_BATCHES = 4
"""Calibration batches of onnxruntime's int8 quantizer when the recipe has no [export] calib_batches."""


@dataclass
class Deployment:
    """What a trial records about its forms: `info` goes to extra["deploy"], `files` to its artifacts."""

    info: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def fastest(self) -> dict[str, Any] | None:
        """The form with the highest speedup at the deploy batch (None without timed forms)."""
        batch = str(self.info.get("batch"))
        timed = [form for form in self.info["forms"] if "speed" in form]
        return max(timed, key=lambda form: form["speed"][batch]["speedup"], default=None)


def deploy_batches(recipe: Recipe) -> list[int]:
    """Batch 1 and the recipe's deploy batch."""
    return sorted({1, recipe.run.deploy_batch})


def timing_threads(recipe: Recipe) -> int:
    """The recipe's thread count, 1 by default (ratios on a shared machine are only fair at 1 thread)."""
    return recipe.run.threads or 1


def time_against_original(
    original: nn.Module, candidates: list[Candidate], env: Env, recipe: Recipe
) -> tuple[list[dict[int, Speed]], Conditions]:
    """Each candidate's Speed per deploy batch against `original` in torch eager fp32, interleaved at the
    recipe's threads, rounds and repeats; and the measurement Conditions."""
    return measure_speeds(
        torch_candidate("original (torch eager fp32)", original),
        candidates,
        deploy_batches(recipe),
        timing_threads(recipe),
        rounds=recipe.run.timing_rounds,
        repeats=recipe.run.timing_repeats,
        seed=recipe.run.seed,
        example=env.sample,
    )


def deploy_forms(model: nn.Module, original: nn.Module | None, env: Env, recipe: Recipe) -> Deployment:
    """Export, score and time every deployable form of `model`.

    Parameters
    ----------
    model:
        The candidate (the original itself when `original` is None).
    original:
        The original model, timed in torch eager fp32 as the first of every interleaved round.

    Returns
    -------
    A Deployment: info {"forms": [...], "batch", "conditions", "no_speed_gain"?} and the files by name.
    """
    from prunequant.lab.measure import evaluate_scores  # measure imports this module

    kind = ModelKind.of(model, original)
    runtimes = runtimes_for(kind, recipe.run.runtimes)
    info: dict[str, Any] = {"kind": vars(kind), "batch": recipe.run.deploy_batch, "forms": []}
    if not runtimes:
        info["no_speed_gain"] = NO_SPEED_GAIN
        return Deployment(info)
    threads, batches = timing_threads(recipe), deploy_batches(recipe)
    calib = env.calibration(recipe.export.calib_batches if recipe.export else CALIB_BATCHES)
    deployment = Deployment(info)
    candidates = []
    with tempfile.TemporaryDirectory(prefix="pq-forms-") as folder:
        for runtime in runtimes:
            path = Path(folder) / f"model{runtime.suffix}"
            form: dict[str, Any] = {"runtime": runtime.name, "file": path.name}
            info["forms"].append(form)
            try:
                form.update(runtime.export(model, env, path, calib))
                runner, candidate = runtime.load(path, threads)
                form["first_call_s"] = first_calls(candidate, env.sample, batches, recipe.run.seed)
                form.update(evaluate_scores(runner, env, recipe), bytes=path.stat().st_size)
            except (PrunequantError, RuntimeError, ValueError) as exc:
                form["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
                continue
            deployment.files[path.name] = path.read_bytes()
            candidates.append((form, candidate))
        if candidates:
            reference = copy.deepcopy(original if original is not None else model).eval()
            speeds, conditions = time_against_original(
                reference, [candidate for _, candidate in candidates], env, recipe
            )
            for (form, _), speed in zip(candidates, speeds, strict=True):
                form["speed"] = {str(batch): value.to_dict() for batch, value in speed.items()}
            info["conditions"] = conditions.to_dict()
    return deployment
