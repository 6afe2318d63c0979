"""The "ship this" box leads the report (markdown, HTML, demo) and the deployable-forms table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prunequant.atomic import atomic_write
from prunequant.lab.budget import Budget
from prunequant.lab.store import ResultsStore
from prunequant.report import load_run, write_report
from prunequant.report.layout import summary
from prunequant.report.ship_box import ship_box
from prunequant.report.tables import deploy_table
from prunequant.tasks import default_task

BUDGET = Budget(default_task().metric(), 0.01)
SPEED = {
    "1": {"speedup": 14.2, "p10": 12.9, "p90": 15.0, "median_ms": 0.1, "original_ms": 1.4, "noisy": False},
    "64": {"speedup": 7.1, "p10": 6.5, "p90": 7.6, "median_ms": 10.0, "original_ms": 71.0, "noisy": True},
}
CONDITIONS = {
    "threads": 1,
    "rounds": 5,
    "repeats": 5,
    "batches": [1, 64],
    "malloc_tuned": True,
    "load_avg": 3.2,
    "under_load": True,
}
CARD = {
    "shipped": True,
    "objective": "latency",
    "budget": BUDGET.to_dict(),
    "recipe_hash": "0123456789abcdef",
    "threads": 1,
    "batches": [1, 64],
    "selection": "ties go to the smaller file",
    "file": "ship/model.int8.onnx",
    "runtime": "onnxruntime-int8",
    "precision": "int8",
    "method": "ours",
    "trial_id": "q",
    "label": "channels 50% w8a8",
    "metric": "top1",
    "test_n": 10000,
    "test": {"top1": 0.9105, "top5": 0.998},
    "original_test": {"top1": 0.9123, "top5": 0.999},
    "change": -0.18,
    "val_score": 0.92,
    "bytes": 46285,
    "original_bytes": 591872,
    "smaller": 591872 / 46285,
    "speed": SPEED,
    "conditions": CONDITIONS,
    "parity": {"agreement": 0.998, "max_abs_diff": 0.12, "mean_rel_diff": 0.01},
    "fastest_any_budget": {
        "trial_id": "z",
        "label": "channels 75%",
        "runtime": "onnxruntime-int8",
        "bytes": 20000,
        "val_score": 0.85,
        "speed": SPEED,
    },
}


def _form(runtime: str, val: float) -> dict:
    return {
        "runtime": runtime,
        "file": f"model.{runtime}.onnx",
        "precision": runtime[-4:],
        "val_score": val,
        "bytes": 46285,
        "speed": SPEED,
    }


def write_deployed_run(run_dir: Path, card: dict, baseline_extra: dict) -> Path:
    run_dir.mkdir(parents=True)
    with ResultsStore(run_dir / "results.sqlite") as store:
        store.set_meta("recipe", {"name": "deployed", "run": {"objective": "latency", "deploy_batch": 64}})
        store.set_meta("task", default_task().describe())
        store.set_meta("budget", BUDGET.to_dict())
        trials = [
            (
                "p",
                "profile",
                "original model",
                0.92,
                {"batch": 64, "forms": [_form("onnxruntime-int8", 0.918)]},
            ),
            (
                "m",
                "post_prune",
                "post prune 50%",
                0.91,
                {"batch": 64, "forms": [], "no_speed_gain": "no speed gain: dense kernels"},
            ),
            (
                "q",
                "structured",
                "channels 50% w8a8",
                0.92,
                {"batch": 64, "forms": [_form("onnxruntime-int8", 0.92)]},
            ),
        ]
        configs = {
            "m": {"steps": [{"op": "prune", "amount": 0.5, "scope": "global"}]},
            "q": {"amount": 0.5, "importance": "l1", "schedule": "one-shot", "format": "w8a8"},
        }
        for trial, stage, label, val, deploy in trials:
            store.add([(trial, stage, label, configs.get(trial, {}))])
            store.start(trial)
            metrics = {
                "score": val,
                "val_score": val,
                "params": 1000,
                "file_bytes": 4000,
                "metrics": {"top1": val},
            }
            extra = {**(baseline_extra if stage == "profile" else {}), "deploy": deploy}
            store.finish(trial, metrics, extra=extra)
        store.set_meta("best", "q")
    atomic_write(run_dir / "ship" / "model_card.json", json.dumps(card).encode())
    return run_dir


def test_the_ship_box_gives_file_runtime_metric_size_speed_spread_and_parity():
    box = ship_box(CARD, default_task().metric())
    assert box.shipped and box.title == "Ship this"
    text = "\n".join(box.lines)
    assert "ship/model.int8.onnx on onnxruntime-int8 (int8)" in text
    assert (
        "10,000 samples, evaluated on the shipped file): 91.05% vs the original's 91.23% (-0.18 pts)" in text
    )
    assert "45.2 KB vs 578.0 KB (12.8x smaller)" in text
    assert "14.20x at batch 1 (p10-p90 12.90-15.00x), 7.10x at batch 64 (p10-p90 6.50-7.60x, noisy)" in text
    assert "UNDER LOAD (load average 3.20)" in text and "1 thread(s)" in text
    assert "99.80% same predictions" in text
    assert "Fastest form regardless of budget: channels 75%" in text
    assert "Chosen by objective 'latency'; ties go to the smaller file." in text


def test_a_pt2e_card_says_what_ran_the_file_and_how_to_run_it():
    from prunequant.lab.runtimes import RUNTIMES

    runtime = RUNTIMES["pt2e-int8"]
    card = {
        **CARD,
        "file": "ship/model.int8.pt2",
        "runtime": runtime.name,
        "engine": "torch-int8 (pt2e+inductor)",
        "usage": runtime.usage,
    }
    lines = ship_box(card, default_task().metric()).lines
    assert lines[0] == (
        "File: ship/model.int8.pt2 on pt2e-int8 (int8; run by torch-int8 (pt2e+inductor)), from trial "
        "'channels 50% w8a8'."
    )
    assert (
        lines[1].startswith("Run it: import torchao") and "torch.compile(torch.export.load(path)" in lines[1]
    )


def test_nothing_in_budget_the_box_says_so_with_the_closest_and_its_miss():
    card = {
        **CARD,
        "shipped": False,
        "reason": "no deployable form meets the budget",
        "closest": {**CARD["fastest_any_budget"], "missed_by": 0.025},
    }
    box = ship_box(card, default_task().metric())
    assert not box.shipped and box.title == "Ship this: nothing meets the budget"
    assert box.lines[0].startswith("Nothing shipped: no deployable form meets the budget (at most 1")
    assert (
        "Closest: channels 75% on onnxruntime-int8: validation top-1 accuracy 85.00%, misses the budget "
        "by 2.50 point(s)" in box.lines[1]
    )


def test_the_report_leads_with_the_box_and_lists_every_deployable_form(tmp_path, baseline_extra):
    run_dir = write_deployed_run(tmp_path / "run", CARD, baseline_extra)
    data = load_run(run_dir)
    assert summary(data).ship.lines == ship_box(CARD, data.metric).lines
    table = deploy_table(data)
    texts = [[cell[0] for cell in row] for row in table.rows]
    assert texts[1][-1] == "no speed gain: dense kernels" and texts[1][1] == "-"
    assert texts[2][:2] == ["channels 50% w8a8", "onnxruntime-int8"] and texts[2][-1] == "yes; shipped"
    assert texts[0][-1] == "yes" and table.highlight == {2}
    assert texts[2][6] == "14.20x (12.90-15.00)" and texts[2][7] == "7.10x (6.50-7.60) noisy"
    paths = write_report(run_dir)
    markdown = paths["markdown"].read_text()
    assert markdown.index("## Ship this") < markdown.index("- 3 trials")
    page = paths["html"].read_text()
    assert page.index('<section class="ship">') < page.index('<ul class="summary">')
    assert "the original&#x27;s speed (eager fp32" not in page  # the old eager "speed" of a model


@pytest.mark.parametrize("shipped", [True, False])
def test_the_demo_headline_prints_the_box(tmp_path, shipped, baseline_extra):
    from rich.console import Console

    from prunequant.demo import show_headline

    card = (
        CARD
        if shipped
        else {**CARD, "shipped": False, "reason": "no deployable form meets the budget", "closest": None}
    )
    run_dir = write_deployed_run(tmp_path / "run", card, baseline_extra)
    console = Console(record=True, width=200)
    show_headline(console, run_dir)
    out = console.export_text()
    assert ("Ship this" in out) and (("12.8x smaller" in out) is shipped)


def test_a_run_from_before_deployable_forms_still_reports_without_its_eager_speeds(tmp_path, baseline_extra):
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    with ResultsStore(run_dir / "results.sqlite") as store:
        store.set_meta("recipe", {"name": "old", "run": {"objective": "size"}})
        store.set_meta("task", default_task().describe())
        store.set_meta("budget", BUDGET.to_dict())
        for trial, stage, extra, config in (
            ("p", "profile", baseline_extra, {}),
            ("q", "post_quant", {}, {"steps": [{"op": "quantize", "w_bits": 8}]}),
        ):
            store.add([(trial, stage, stage, config)])
            store.start(trial)
            metrics = {"score": 0.9, "val_score": 0.9, "params": 1000, "file_bytes": 4000, "speedup": 0.4}
            store.finish(trial, {**metrics, "latency_fp32_ms": 1.0, "metrics": {"top1": 0.9}}, extra=extra)
        store.set_meta("best", "q")
    markdown = write_report(run_dir)["markdown"].read_text()
    assert "not measured as deployed" in markdown and "0.40x" not in markdown
    assert "## Ship this" not in markdown  # nothing was shipped by that run


def _entry(file: str, runtime: str, main: bool, speed: dict, top1: float, change: float) -> dict:
    return {
        "file": file,
        "runtime": runtime,
        "precision": "int8",
        "main": main,
        "speed": speed,
        "test": {"top1": top1},
        "change": change,
    }


PT2E_SPEED = {
    "1": {"speedup": 2.0, "p10": 1.9, "p90": 2.1, "noisy": False},
    "64": {"speedup": 6.0, "p10": 5.8, "p90": 6.3, "noisy": False},
}
ORT_SPEED = {
    "1": {"speedup": 18.1, "p10": 17.0, "p90": 19.2, "noisy": False},
    "64": {"speedup": 3.2, "p10": 3.1, "p90": 3.3, "noisy": False},
}
PER_BATCH_CARD = {
    **CARD,
    "file": "ship/model.int8.pt2",
    "runtime": "pt2e-int8",
    "speed": PT2E_SPEED,
    "per_batch_rule": "per batch size: the shipped file, unless another form is faster beyond the tie floor",
    "per_batch": {
        "1": _entry("ship/model.int8.onnx", "onnxruntime-int8", False, ORT_SPEED, 0.9100, -0.23),
        "64": _entry("ship/model.int8.pt2", "pt2e-int8", True, PT2E_SPEED, 0.9105, -0.18),
    },
}


def test_the_box_adds_a_line_per_batch_that_runs_another_file_and_states_the_rule():
    lines = ship_box(PER_BATCH_CARD, default_task().metric()).lines
    at_1 = [line for line in lines if line.startswith("At batch")]
    assert at_1 == [
        "At batch 1: run ship/model.int8.onnx on onnxruntime-int8 (int8), 18.10x at batch 1 (p10-p90 "
        "17.00-19.20x) vs 2.00x for ship/model.int8.pt2; top-1 accuracy on the full test split (evaluated on "
        "that file) 91.00% (-0.23 pts)."
    ]
    assert lines[lines.index(at_1[0]) + 1] == (f"Per-batch files: {PER_BATCH_CARD['per_batch_rule']}.")


def test_a_per_batch_file_the_re_timing_found_no_faster_is_flagged():
    slow = {**ORT_SPEED, "1": {"speedup": 1.9, "p10": 1.8, "p90": 2.0, "noisy": False}}
    entry = {
        **_entry("ship/model.int8.onnx", "onnxruntime-int8", False, slow, 0.91, -0.23),
        "confirmed": False,
        "trial_speedup": 18.1,
    }
    card = {**PER_BATCH_CARD, "per_batch": {**PER_BATCH_CARD["per_batch"], "1": entry}}
    (line,) = [line for line in ship_box(card, default_task().metric()).lines if line.startswith("At batch")]
    assert line.endswith(
        "Re-timed in ship/, it was not faster than ship/model.int8.pt2 here: the trial's timing (18.10x) "
        "chose it; time both where you deploy."
    )
    confirmed = {**entry, "confirmed": True}
    card["per_batch"]["1"] = confirmed
    assert "Re-timed" not in " ".join(ship_box(card, default_task().metric()).lines)


def test_one_file_for_every_batch_adds_no_line():
    main = _entry("ship/model.int8.onnx", "onnxruntime-int8", True, SPEED, 0.9105, -0.18)
    card = {**CARD, "per_batch_rule": "rule", "per_batch": {"1": main, "64": main}}
    assert ship_box(card, default_task().metric()).lines == ship_box(CARD, default_task().metric()).lines


def test_the_deployable_forms_table_marks_the_per_batch_file(tmp_path, baseline_extra):
    card = {
        **PER_BATCH_CARD,
        "runtime": "onnxruntime-fp32",
        "per_batch": {
            "1": _entry("ship/model.int8.onnx", "onnxruntime-int8", False, ORT_SPEED, 0.91, -0.23),
            "64": _entry("ship/model.fp32.onnx", "onnxruntime-fp32", True, PT2E_SPEED, 0.91, -0.18),
        },
    }
    table = deploy_table(load_run(write_deployed_run(tmp_path / "run", card, baseline_extra)))
    texts = [[cell[0] for cell in row] for row in table.rows]
    assert (
        texts[2][:2] == ["channels 50% w8a8", "onnxruntime-int8"]
        and texts[2][-1] == "yes; shipped for batch 1"
    )
    assert table.highlight == {2}
