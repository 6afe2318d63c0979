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
from prunequant.report.seed003_tables import SCHEDULES, format_order
from prunequant.report.tables import Table, all_tables

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
    if name.startswith("seed003"):
        assert_seed003_tables(toy_scale(recipe), tmp_path / "run")
    if name == "seed004_det":
        assert_seed004_table(toy_scale(recipe), tmp_path / "run")


def tables_of(run: Path) -> dict[str, Table]:
    """The report's tables of `run` by key; the seed tables are in the markdown report too."""
    tables = {table.key: table for table in all_tables(load_run(run))}
    markdown = write_report(run)["markdown"].read_text()
    assert all(f"### {table.title}" in markdown for key, table in tables.items() if key.startswith("seed"))
    return tables


def fail_trial(run: Path, label_part: str, stage: str) -> None:
    """Mark the finished trial of `stage` whose label holds `label_part` failed (as a crash would)."""
    with ResultsStore(run / "results.sqlite") as store:
        (row,) = [row for row in store.rows(stage) if label_part in row.label]
        store.fail(row.trial_id, "RuntimeError: injected")


def assert_seed003_tables(recipe: Recipe, run: Path) -> None:
    """Tables 1-3 have the seed's row groups (Baseline, then each sparsity) and a figure in every cell;
    a failed trial's cell says so."""
    tables, structured = tables_of(run), recipe.structured
    groups = ["Baseline", *[f"{100 * amount:g}% sparsity" for amount in structured.amounts]]
    schedules = [SCHEDULES[name] for name in SCHEDULES if name in structured.schedules]
    table1, table2 = tables["seed003_schedules"], tables["seed003_importance"]
    assert [(row[0][0], row[1][0]) for row in table1.rows] == [
        ("Baseline", "Full Model"),
        *[(group, schedule) for group in groups[1:] for schedule in schedules],
    ]
    assert [row[1][0] for row in table2.rows] == [
        "Full Model",
        *["Layerwise (A)", "Layerwise (W)"] * len(groups[1:]),
    ]
    for table in (table1, table2):
        assert all(row[-2][1] is not None for row in table.rows), table.rows  # a figure in every cell
    table3, joint, source = tables["seed003_quant"], recipe.joint, "joint: layerwise activation_l1 + QAT"
    unpruned = recipe.aware_quant
    assert [tuple(text for text, _ in row[:3]) for row in table3.rows] == [
        ("Baseline", "Full Model", "-"),
        *[("Baseline", f"W{bits}A{unpruned.a_bits}", "aware_quant") for bits in unpruned.bits],
        *[
            (f"{100 * amount:g}% sparsity", fmt.upper(), source)
            for amount in joint.amounts
            for fmt in sorted(joint.formats, key=format_order)
        ],
    ]
    assert all(row[-2][1] is not None for row in table3.rows)

    fail_trial(run, f"layerwise channels {100 * structured.amounts[-1]:g}% activation_l1", "structured")
    with ResultsStore(run / "results.sqlite") as store:  # a joint trial that has not run yet
        row = store.rows("joint")[-1]
        store.add([("later", "joint", "joint: later", {**row.config, "format": "w2a2"})])
    tables = tables_of(run)
    assert tables["seed003_schedules"].rows[-1][1:3] == [
        ("Layerwise", "Layerwise"),
        ("failed: RuntimeError: injected", None),
    ]
    assert [text for text, _ in tables["seed003_quant"].rows[-1][1:4]] == [
        "W2A2",
        source,
        "not run yet (pending)",
    ]


def assert_seed004_table(recipe: Recipe, run: Path) -> None:
    """One row per method and level with params, MACs, speedup, and the metric before and after the
    fine-tune; a failed fine-tune's cell says so."""
    table = tables_of(run)["seed004"]
    slimming, layers = recipe.slimming, recipe.layer_prune
    assert [row[0][0] for row in table.rows] == [
        "original",
        "sparsity training (L1 on BN γ)",
        *["network slimming"] * len(slimming.amounts),
        *["layer pruning"] * len(layers.blocks),
        "bn_gamma channels, no sparsity training (one-shot)",
    ]
    for row in table.rows[2:]:  # every pruned level: smaller, timed, scored before and after
        assert row[2][1] < table.rows[0][2][1] and row[5][1] is not None
        assert row[6][1] is not None and row[8][1] is not None, row

    fail_trial(run, f"slimming {100 * slimming.amounts[-1]:g}% (global BN gamma) @ lr", "slimming")
    level = tables_of(run)["seed004"].rows[1 + len(slimming.amounts)]
    assert level[6][1] is not None and level[8] == ("failed: RuntimeError: injected", None)
