"""End to end: the tiny seed-000-style recipe runs, records every trial, resumes without redoing work."""

import json
from dataclasses import replace

import pytest
from torch import nn

from prunequant.cli.main import main
from prunequant.errors import ConfigError
from prunequant.lab import ResultsStore, load_recipe, run_recipe
from prunequant.lab.combine import choose_levels
from prunequant.lab.env import budget_of
from prunequant.models import load_checkpoint


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_base, tiny_sweeps):
    folder = tmp_path_factory.mktemp("lab")
    path = folder / "tiny.toml"
    path.write_text(tiny_base + tiny_sweeps)
    recipe = load_recipe(path)
    summary = run_recipe(recipe, folder / "run", progress=False, recipe_file=path)
    with ResultsStore(folder / "run" / "results.sqlite") as store:
        rows = store.rows()
    return recipe, folder / "run", summary, rows


def test_every_trial_of_the_recipe_finishes(run):
    _, run_dir, summary, rows = run
    assert [row.stage for row in rows] == [
        "profile",
        "post_prune",
        "post_prune",
        "aware_prune",
        "post_quant",
        "post_quant",
        "aware_quant",
        "combine",
    ]
    assert all(row.status == "done" and row.attempts == 1 for row in rows), [row.error for row in rows]
    assert set(summary) == {"trials", "done", "failed", "best", "ship", "run_dir"}
    assert (summary["trials"], summary["done"], summary["failed"]) == (8, 8, 0)
    assert not (run_dir / "report.html").exists()  # the lab hands on the run directory, not a report
    assert (run_dir / "recipe.toml").is_file()
    for row in rows:
        assert (run_dir / row.checkpoint).is_file()
        assert 0.0 <= row.get("top1") <= 1.0 and row.get("file_bytes") > 0 and "deploy" in row.extra
    assert rows[0].get("latency_fp32_ms") > 0  # the original in torch eager fp32; no compressed eager timing
    assert all(row.get("latency_fp32_ms") is None for row in rows[1:])


def test_post_pruning_zeroes_exactly_the_requested_share_of_weights(run):
    _, run_dir, _, rows = run
    baseline, pruned = rows[0], rows[2]
    model, _ = load_checkpoint(run_dir / baseline.checkpoint)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert pruned.config["steps"] == [
        {"op": "prune", "amount": 0.5, "scope": "global", "include_bias": False}
    ]
    assert pruned.get("params") == baseline.get("params") == baseline.get("nonzero_params")
    assert pruned.get("nonzero_params") == baseline.get("params") - round(0.5 * weights)
    assert pruned.get("file_bytes") < baseline.get("file_bytes")


def test_quantized_trials_record_bits_memory_and_zero_share(run):
    _, _, _, rows = run
    baseline, q8, q4 = rows[0], rows[4], rows[5]
    assert (q8.get("w_bits"), q4.get("w_bits"), q4.get("a_bits"), baseline.get("w_bits")) == (8, 4, 32, 32)
    assert q4.get("weight_mb") < q8.get("weight_mb") < baseline.get("weight_mb")
    assert q4.get("activation_mb") > 0 and baseline.get("a_bits") == 32
    assert q4.get("pd") == pytest.approx(
        100 * q4.get("top1") / (q4.get("weight_mb") + q4.get("activation_mb"))
    )
    assert 0.0 < q8.extra["steps"]["zero_share"] < q4.extra["steps"]["zero_share"] < 1.0
    assert q4.get("file_bytes") < baseline.get("file_bytes")


def test_aware_trials_fine_tune_at_the_lr_then_refine_at_a_tenth(run):
    recipe, _, _, rows = run
    aware = rows[3]
    assert aware.config["finetune"] == {"epochs": 1, "lr": recipe.baseline.lr, "refine_epochs": 1}
    phases = aware.extra["phases"]
    assert [(p["lr"], p["epochs"]) for p in phases] == [(0.1, 1), (pytest.approx(0.01), 1)]
    assert phases[-1]["score"] == aware.get("top1") and phases[-1]["metrics"]["top1"] == aware.get("top1")


def test_combine_applies_the_chosen_levels_together(run):
    recipe, _, _, rows = run
    choice = choose_levels(rows[3:4], rows[6:7], rows[0], budget_of(recipe))
    combined = rows[-1]
    assert combined.config["chosen"] == choice.to_dict()
    ops = [step["op"] for step in combined.config["steps"]]
    assert ops == [
        op for op, level in (("prune", choice.amount), ("quantize", choice.bits)) if level is not None
    ]


def test_rerunning_skips_finished_trials(run):
    recipe, run_dir, summary, rows = run
    again = run_recipe(recipe, run_dir, progress=False)
    assert again["trials"] == summary["trials"] and again["best"] == summary["best"]
    with ResultsStore(run_dir / "results.sqlite") as store:
        after = store.rows()
    assert [(r.trial_id, r.attempts, r.finished_at) for r in after] == [
        (r.trial_id, r.attempts, r.finished_at) for r in rows
    ]


def test_a_run_dir_of_another_context_is_refused(run):
    recipe, run_dir, _, _ = run
    with pytest.raises(ConfigError, match="different model/data/baseline/seed"):
        run_recipe(replace(recipe, run=replace(recipe.run, seed=7)), run_dir, progress=False)


def test_the_cli_prints_one_json_object(run, capsys):
    _, run_dir, summary, _ = run
    assert main(["run", str(run_dir / "recipe.toml"), "-o", str(run_dir), "--json", "--no-report"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {**summary, "report": None}


@pytest.mark.parametrize(
    "change", [{"runtimes": ("onnxruntime-fp32",)}, {"deploy_batch": 16}], ids=["runtimes", "deploy_batch"]
)
def test_resuming_with_other_deployment_settings_is_refused(run, change):
    """The finished trials were deployed and timed under the old settings and would not be re-measured."""
    recipe, run_dir, _, rows = run
    key = next(iter(change))
    with pytest.raises(ConfigError, match=f"measured with other \\[run\\] settings \\({key} "):
        run_recipe(replace(recipe, run=replace(recipe.run, **change)), run_dir, progress=False)
    with ResultsStore(run_dir / "results.sqlite") as store:
        assert [r.finished_at for r in store.rows()] == [r.finished_at for r in rows]
