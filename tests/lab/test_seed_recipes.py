"""The seed recipes of issue 13 (flow, segmentation, VAE, detection) at toy scale: every stage runs on
tiny data for a few steps, at the mildest and hardest level of each sweep, and the report speaks the
task's metric in its direction."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from prunequant.lab import Recipe, load_recipe, run_recipe, within_budget
from prunequant.lab.env import budget_of
from prunequant.lab.store import MODEL_STAGES, ResultsStore
from prunequant.report import load_run, write_report

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
GENERATED = ("flying-fashion", "fashion-scenes")


def toy_scale(recipe: Recipe, *, samples: int = 48, batches: int = 2, batch_size: int = 8) -> Recipe:
    """`recipe` with every stage kept but tiny: `samples` generated scenes (or images), `batches` steps an
    epoch, one epoch per phase, two evaluation batches, the fewest timing repeats; sweeps keep their first and
    last level, the structured grid every schedule and importance at its last amount and format, the joint
    pipeline at its last amount and format, slimming
    and layer pruning after one epoch of sparsity training."""
    data = recipe.data
    if data.dataset in GENERATED:
        data = replace(data, options={**data.options, "size": samples})
    else:
        data = replace(data, limit=2 * samples)
    changes: dict = {
        "data": data,
        "baseline": replace(recipe.baseline, epochs=1, max_batches_per_epoch=batches, batch_size=batch_size),
        "run": replace(
            recipe.run, eval_batches=batches, threads=1, deploy_batch=2, timing_rounds=1, timing_repeats=1
        ),
        "profile": replace(recipe.profile, repeats=2),
    }
    for stage in ("post_prune", "aware_prune"):
        if getattr(recipe, stage) is not None:
            changes[stage] = replace(getattr(recipe, stage), amounts=_ends(getattr(recipe, stage).amounts))
    for stage in ("post_quant", "aware_quant"):
        if getattr(recipe, stage) is not None:
            changes[stage] = replace(getattr(recipe, stage), bits=_ends(getattr(recipe, stage).bits))
    for stage in ("aware_prune", "aware_quant"):
        if getattr(recipe, stage) is not None:
            changes[stage] = replace(changes[stage], epochs=1, refine_epochs=1)
    structured = recipe.structured
    if structured is not None:  # every schedule and importance; the hardest amount and format
        amounts = _ends(structured.amounts) if len(structured.schedules) == 1 else structured.amounts[-1:]
        changes["structured"] = replace(
            structured, amounts=amounts, formats=structured.formats[-1:], steps=2, epochs=1, refine_epochs=1
        )
    if recipe.joint is not None:  # the hardest amount and format, one epoch per phase
        changes["joint"] = replace(
            recipe.joint, amounts=recipe.joint.amounts[-1:], formats=recipe.joint.formats[-1:], epochs=1,
            qat_epochs=1, refine_epochs=1,
        )  # fmt: skip
    for stage in ("slimming", "layer_prune"):  # one epoch of sparsity training; mildest and hardest level
        section = getattr(recipe, stage)
        if section is not None:
            field = "amounts" if stage == "slimming" else "blocks"
            levels = {field: _ends(getattr(section, field))}
            changes[stage] = replace(section, sparsity_epochs=1, epochs=1, refine_epochs=1, **levels)
    if recipe.combine is not None:
        changes["combine"] = replace(recipe.combine, refine_epochs=1)
    if recipe.bench is not None:
        changes["bench"] = replace(recipe.bench, batch_sizes=(1,), repeats=2, rounds=1)
    return replace(recipe, **changes)


def _ends(values: tuple) -> tuple:
    """The first and last level of a sweep (the mildest and the hardest)."""
    return tuple(dict.fromkeys((values[0], values[-1])))


CASES = {
    # recipe: (task, metric, label word in the report, higher is better, stages)
    "seed000_flow": (
        "flow", "epe", "end-point error", False,
        ["profile", "post_prune", "aware_prune", "post_quant", "aware_quant", "combine", "bench"],
    ),
    "seed003_seg": (
        "segmentation", "miou", "mean IoU", True, ["profile", "aware_quant", "structured", "joint", "bench"],
    ),
    "seed003_vae": ("vae", "elbo", "ELBO", True, ["profile", "aware_quant", "structured", "joint", "bench"]),
    "seed004_det": (
        "detection", "map50", "mAP@0.5", True, ["profile", "structured", "slimming", "layer_prune", "bench"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_seed_recipe_at_toy_scale(name: str, tmp_path: Path) -> None:
    task, metric, label, higher, stages = CASES[name]
    recipe = load_recipe(RECIPES / f"{name}.toml")
    assert recipe.task.name == task and recipe.stages() == stages

    summary = run_recipe(toy_scale(recipe), tmp_path / "run", progress=False)

    with ResultsStore(tmp_path / "run" / "results.sqlite", read_only=True) as store:
        rows = store.rows()
    failed = {row.label: row.error for row in rows if row.status != "done"}
    assert not failed, failed
    assert summary["failed"] == 0 and summary["done"] == len(rows)
    assert {row.stage for row in rows} >= set(stages) - {"bench"}
    for row in rows:  # every model trial is scored with the task's own metrics
        if row.stage in ("profile", *MODEL_STAGES):
            assert metric in row.metrics["metrics"], row.label

    data = load_run(tmp_path / "run")
    assert data.metric.name == metric and data.metric.higher_is_better is higher
    direction = "higher is better" if higher else "lower is better"
    assert direction in data.metric.title
    assert any(row.stage in MODEL_STAGES and row.get("score") is not None for row in rows)
    if summary["best"] is not None:  # within the budget, judged in the metric's direction
        assert summary["best"]["metric"] == metric
        best = next(row for row in rows if row.trial_id == summary["best"]["trial_id"])
        assert within_budget(best, data.baseline, budget_of(recipe))

    markdown = write_report(tmp_path / "run")["markdown"].read_text()
    assert label in markdown and direction in markdown
    if name == "seed000_flow":
        assert "outlier rate" in markdown  # Table II's second metric
    if name == "seed003_vae":  # BCE on pixels in [0, 1], and the FID-FMNIST of every model trial
        assert recipe.data.options == {"normalize": False} and recipe.task.options["recon"] == "bce"
        assert all(row.metrics["metrics"]["fid_fmnist"] >= 0 for row in rows if row.stage == "structured")
    assert "top-1" not in markdown and "top1" not in markdown
