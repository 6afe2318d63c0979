"""Accuracy recovery in the lab: [finetune] options in every fine-tune, the joint and iterative stages."""

import pytest
import torch

from prunequant.lab import ResultsStore, load_recipe, run_recipe
from prunequant.lab.env import budget_of
from prunequant.lab.select import within_budget
from prunequant.models import build_from_spec
from prunequant.report import write_report

RECOVERY = """
[finetune]
distill = true
distill_weight = 0.7
distill_temperature = 2.0
early_stop_patience = 1
bn_recalibrate = true
bn_batches = 2

[aware_prune]
amounts = [0.5]
epochs = 2
refine_epochs = 1

[joint]
amounts = [0.5]
formats = ["w8a8"]
epochs = 1
qat_epochs = 1
refine_epochs = 0

[iterative]
step = 0.15
target_macs_reduction = 0.6
max_steps = 4
epochs = 1
refine_epochs = 0
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_base):
    folder = tmp_path_factory.mktemp("recovery")
    loose = tiny_base.replace("max_drop = 0.05", "max_drop = 0.5")  # the iteration may reach its target
    (folder / "r.toml").write_text(loose + RECOVERY)
    recipe = load_recipe(folder / "r.toml")
    summary = run_recipe(recipe, folder / "run", progress=False)
    with ResultsStore(folder / "run" / "results.sqlite") as store:
        rows, meta = store.rows(), store.get_meta("iterative")
    assert summary["failed"] == 0, [(row.label, row.error) for row in rows if row.error]
    by_stage = {stage: [r for r in rows if r.stage == stage] for stage in {r.stage for r in rows}}
    return recipe, by_stage, meta, folder / "run"


def _batchnorms(recipe) -> int:
    model = build_from_spec(recipe.model.arch, **recipe.model.kwargs)
    return sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_every_fine_tune_records_distillation_bn_and_early_stopping(run):
    recipe, by_stage, _, _ = run
    aware = by_stage["aware_prune"][0]
    recovery = aware.extra["recovery"]
    assert recovery["distill"] == {"kind": "kl", "weight": 0.7, "temperature": 2.0, "features": []}
    assert recovery["bn_recalibrated"] == _batchnorms(recipe)
    assert recovery["early_stop_patience"] == 1 and len(recovery["early_stopped"]) == 2
    assert aware.config["finetune"]["recovery"]["distill"] is True
    for row in by_stage["joint"] + by_stage["iterative"]:
        records = row.extra["recovery"]
        records = records if isinstance(records, list) else [records]
        assert all(record["distill"]["kind"] == "kl" for record in records)


def test_joint_prunes_every_layer_then_quantizes(run):
    _, by_stage, _, _ = run
    baseline, (joint,) = by_stage["profile"][0], by_stage["joint"]
    layerwise = joint.extra["layerwise"]
    assert len(layerwise["pruned"]) == layerwise["groups"] > 0 and "unreached" not in layerwise
    assert joint.extra["recovery"][0]["early_stop_patience"] == 0  # the pruning phase runs to its end
    assert joint.get("macs") < baseline.get("macs")
    assert (joint.get("w_bits"), joint.get("a_bits")) == (8, 8)
    assert joint.config["importance"] == "activation_l1"


def test_iterative_steps_chain_until_a_stop_reason(run):
    recipe, by_stage, meta, _ = run
    steps = sorted(by_stage["iterative"], key=lambda r: r.config["step"])
    baseline = by_stage["profile"][0]
    assert [r.config["step"] for r in steps] == list(range(1, len(steps) + 1)) and len(steps) >= 2
    assert steps[0].config["previous"] == baseline.trial_id
    for before, after in zip(steps, steps[1:], strict=False):
        assert after.config["previous"] == before.trial_id
        assert after.get("macs") < before.get("macs")
    reductions = [r.extra["macs_reduction"] for r in steps]
    assert reductions == sorted(reductions) and reductions[0] > 0
    (entry,) = meta
    assert entry["steps"] == [r.trial_id for r in steps]
    assert entry["stopped"] == f"target reached at step {len(steps)}"
    assert reductions[-1] >= 0.6 and all(value < 0.6 for value in reductions[:-1])
    assert all(within_budget(row, baseline, budget_of(recipe)) for row in steps)


def test_the_report_lists_the_new_stages_in_its_generic_tables(run):
    _, by_stage, _, run_dir = run
    markdown = write_report(run_dir)["markdown"].read_text()
    for row in by_stage["joint"] + by_stage["iterative"]:
        assert row.label in markdown
