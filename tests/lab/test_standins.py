"""Issue 10's five stand-ins of the seeds' systems, each a recipe of its own module:factory model, data
factory and user task: post/aware pruning and quantization, combine, export (+ parity) and the report,
with the task's metric in every table and "best" picked in the metric's direction."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
import torch

from prunequant.export.onnx_int8 import export_int8
from prunequant.lab import parse_recipe, run_recipe
from prunequant.quantization import quantization_aware_finetune, quantize
from prunequant.report import load_run, write_report
from prunequant.report.tables import all_tables, header
from prunequant.training import finetune_then_refine

sys.path.insert(0, str(Path(__file__).parent))  # the recipes import standins.*

STANDINS = {
    "flow": ("flow_net", "flow_data", "flow_task", '"5%"'),
    "unet": ("unet", "segmentation_data", "segmentation_task", "0.05"),
    "cyclegan": ("generator", "translation_data", "reconstruction_task", "0.5"),
    "vae": ("conv_vae", "vae_data", "vae_task", '"5%"'),
    "yolo": ("detector", "detection_data", "detection_task", "0.1"),
}

RECIPE = """
[run]
seed = 0
threads = 1

[task]
name = "standins.tasks:{task}"
max_drop = {drop}

[model]
arch = "standins.models:{model}"
kwargs = {{ width = 4 }}
{checkpoint}

[data]
factory = "standins.data:{data}"

[baseline]
optimizer = "adam"
lr = 0.01
epochs = 4
batch_size = 8

[profile]
batch_size = 2
repeats = 1

[post_prune]
amounts = [0.25, 0.5]

[aware_prune]
amounts = [0.5]
epochs = 1
refine_epochs = 0

[post_quant]
bits = [8, 4]

[aware_quant]
bits = [4]
epochs = 1
refine_epochs = 0

[combine]

[export]
calib_batches = 1
"""

NEEDS_TASK = (finetune_then_refine, quantization_aware_finetune, quantize, export_int8)


def test_every_step_the_lab_calls_takes_the_task():
    assert all("task" in inspect.signature(fn).parameters for fn in NEEDS_TASK)


def recipe_text(name: str, checkpoint: str = "") -> str:
    model, data, task, drop = STANDINS[name]
    line = f'checkpoint = "{checkpoint}"' if checkpoint else ""
    return RECIPE.format(model=model, data=data, task=task, drop=drop, checkpoint=line)


def test_standin_recipes_validate_and_models_fit_their_tasks():
    """Every stand-in recipe parses; its model runs on its data and fits its task (no training needed)."""
    from prunequant.lab.compress import load_baseline_model
    from prunequant.lab.env import environment

    for name in STANDINS:
        recipe = parse_recipe(recipe_text(name), name=f"{name}.toml")
        env = environment(recipe)
        model, meta, needs_training = load_baseline_model(recipe, env)
        assert needs_training and meta["arch"] == f"standins.models:{STANDINS[name][0]}"
        assert env.budget.metric.name == env.task.primary


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STANDINS))
def test_standin_recipe_runs_end_to_end(name: str, tmp_path: Path):
    from standins import models

    checkpoint = ""
    if name == "flow":  # a plain state_dict of the user architecture, loaded weights_only
        torch.manual_seed(0)
        torch.save(models.flow_net(width=4).state_dict(), tmp_path / "flow.pt")
        checkpoint = str(tmp_path / "flow.pt")
    recipe = parse_recipe(recipe_text(name, checkpoint), name=f"{name}.toml")
    summary = run_recipe(recipe, tmp_path / "run", progress=False)
    assert summary["failed"] == 0, summary
    write_report(tmp_path / "run")
    data = load_run(tmp_path / "run")
    spec = data.metric
    assert spec.name == data.task["primary"]
    tables = {table.key: table for table in all_tables(data)}
    for key in ("sweep", "export", "trials"):
        assert any(header(spec) in column for column in tables[key].columns), (key, tables[key].columns)
    # what ships is the fastest deployable form within budget (objective "latency", the default), judged
    # on the form's own file in the metric's direction
    from prunequant.lab.env import budget_of
    from prunequant.lab.select import best_choice

    choice = best_choice(data.rows, data.baseline, budget_of(recipe), "latency")
    assert data.best is not None and choice is not None and data.ship["shipped"]
    assert (data.ship["trial_id"], data.ship["runtime"]) == (choice.row.trial_id, choice.runtime)
    assert data.ship["metric"] == spec.name and spec.name in data.ship["test"]
    export = data.stage("export")
    assert export and all("max_abs_diff" in row.extra["parity"] for row in export)
    assert "Table II" in (tmp_path / "run" / "report.md").read_text()
