"""Fixtures of the lab tests: the tiny recipe of tests/tiny_recipe.py (synthetic 1x8x8 data, a 4-wide
small_cnn trained in the run), its variants and sweeps, rows and forms."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from prunequant.lab.store import METRIC_COLUMNS, TrialRow

from ..tiny_recipe import BASE, tiny_recipe

SWEEPS = """
[post_prune]
amounts = [0.25, 0.5]

[aware_prune]
amounts = [0.5]
epochs = 1
refine_epochs = 1

[post_quant]
bits = [8, 4]

[aware_quant]
bits = [4]
epochs = 1
refine_epochs = 0

[combine]
"""


@pytest.fixture(scope="session")
def tiny_base() -> str:
    """The [run], [model], [data], [baseline] and [profile] tables of the tiny recipe."""
    return BASE


@pytest.fixture(scope="session")
def tiny_variant() -> Callable[..., str]:
    """tiny_variant(**values) -> the tiny recipe with those `key = value`s set (tests/tiny_recipe.py)."""
    return tiny_recipe


@pytest.fixture(scope="session")
def tiny_sweeps() -> str:
    """Seed 000's stages in miniature: post/aware pruning and quantization, then combine."""
    return SWEEPS


@pytest.fixture
def recipe_file(tmp_path: Path) -> Callable[..., Path]:
    """write(extra, base=BASE, name="tiny.toml") -> path of a recipe file in tmp_path."""

    def write(extra: str = "", base: str = BASE, name: str = "tiny.toml") -> Path:
        path = tmp_path / name
        path.write_text(base + extra)
        return path

    return write


@pytest.fixture
def make_row() -> Callable[..., TrialRow]:
    """make_row(stage, val_score=None, status="done", config=None, extra=None, **metrics) -> TrialRow."""
    counter = iter(range(10**6))

    def make(
        stage: str,
        val_score: float | None = None,
        *,
        status: str = "done",
        config: dict | None = None,
        extra: dict | None = None,
        **metrics: float,
    ) -> TrialRow:
        number = next(counter)
        return TrialRow(
            trial_id=f"t{number}",
            stage=stage,
            label=f"{stage} {number}",
            config=config or {},
            status=status,
            error=None,
            attempts=1,
            metrics=_columns(val_score, metrics),
            started_at=None,
            finished_at=None,
            duration_s=None,
            checkpoint=None,
            extra=extra or {},
        )

    return make


def _columns(val_score: float | None, values: dict) -> dict:
    """Store columns of a row: task metrics (e.g. top1) go to the `metrics` JSON, top1 also to `score`."""
    task_metrics = {key: value for key, value in values.items() if key not in METRIC_COLUMNS}
    columns = {**dict.fromkeys(METRIC_COLUMNS), "val_score": val_score}
    columns.update({key: value for key, value in values.items() if key in METRIC_COLUMNS})
    columns["metrics"] = task_metrics
    if columns["score"] is None and "top1" in task_metrics:
        columns["score"] = task_metrics["top1"]
    return columns


@pytest.fixture
def make_form() -> Callable[..., dict]:
    """make_form(runtime, val, size, speedup, spread=0.1, batch1=None) -> a timed deployable form (_form)."""
    return _form


@pytest.fixture
def forms_row(make_row: Callable[..., TrialRow]) -> Callable[..., TrialRow]:
    """forms_row(stage, val, *forms) -> a finished row whose extra["deploy"] lists `forms` (batch 64)."""

    def make(stage: str, val: float, *forms: dict) -> TrialRow:
        return make_row(stage, val, extra={"deploy": {"batch": 64, "forms": list(forms)}})

    return make


def _form(
    runtime: str, val: float, size: int, speedup: float, spread: float = 0.1, batch1: float | None = None
) -> dict:
    """A timed form: speedup at the deploy batch 64 and at batch 1 (`batch1`, default twice that), p10/p90 =
    speedup -/+ spread."""
    speed = {
        str(batch): {
            "speedup": value,
            "p10": value - spread,
            "p90": value + spread,
            "median_ms": 1.0,
            "original_ms": value,
            "noisy": False,
        }
        for batch, value in ((1, 2 * speedup if batch1 is None else batch1), (64, speedup))
    }
    return {
        "runtime": runtime,
        "file": f"model.{runtime}.onnx",
        "val_score": val,
        "bytes": size,
        "speed": speed,
    }
