"""Seed 003 Tables 1-3 and seed 004's table from synthetic runs: the seeds' row groups and columns, the
best LR per cell, and cells that name a failed, pending or absent trial."""

from __future__ import annotations

import pytest

from prunequant.report import load_run, write_report
from prunequant.report.seed003_tables import importance_table, quant_table, schedules_table
from prunequant.report.seed004_table import seed004_table
from prunequant.report.tables import all_tables, header

SCHEDULES = ("from-scratch", "one-shot", "stepwise", "layerwise")
FAILED = "failed: RuntimeError: out of luck"


@pytest.fixture
def trial(model_metrics):
    """trial(stage, label, config, score=None | status) -> a (stage, label, config, status, metrics,
    extra) tuple; a float score is a finished channel-pruned model (500 of 1000 params left)."""

    def make(stage, label, config, outcome, extra=None):
        if isinstance(outcome, str):
            return (stage, label, config, outcome, {}, {})
        return (
            stage,
            label,
            config,
            "done",
            model_metrics(outcome, 2000, 0.5, params=500, nonzero=500),
            extra or {},
        )

    return make


@pytest.fixture
def structured(trial):
    def make(schedule, amount, importance, fmt, outcome, lr=0.1, extra=None):
        config = {
            "kind": "structured",
            "source": "t00",
            "amount": amount,
            "importance": importance,
            "format": fmt,
            "schedule": schedule,
            "steps": 2,
            "round_to": 1,
            "finetune": {"epochs": 1, "lr": lr, "refine_epochs": 1},
        }
        return trial("structured", f"{schedule} {amount} {importance} {fmt} @ {lr}", config, outcome, extra)

    return make


@pytest.fixture
def joint(trial):
    def make(amount, fmt, outcome):
        config = {"kind": "joint", "source": "t00", "amount": amount, "importance": "activation_l1"}
        return trial("joint", f"joint {amount} {fmt}", {**config, "format": fmt, "qat_epochs": 1}, outcome)

    return make


def _texts(table):
    return [[text for text, _ in row] for row in table.rows]


def test_tables_1_to_3_in_the_new_layout_with_failed_pending_and_absent_trials(run_of, structured, joint):
    trials = []
    for amount in (0.5, 0.75):
        for index, schedule in enumerate(SCHEDULES):
            if (schedule, amount) == ("stepwise", 0.75):
                continue  # absent: "no trial"
            for importance, bonus in (("activation_l1", 0.01), ("l1", 0.0)):
                failed = (schedule, amount, importance) == ("one-shot", 0.75, "activation_l1")
                score = 0.80 - amount / 10 + index / 100 + bonus
                trials.append(structured(schedule, amount, importance, "fp32", "failed" if failed else score))
    trials.append(structured("layerwise", 0.5, "activation_l1", "fp32", 0.88, lr=0.01))  # the better LR
    for amount in (0.5, 0.75):
        for fmt, score in (("w8a8", 0.8), ("w4a8", 0.75), ("w4a4", 0.7)):
            outcome = {("w4a8", 0.75): "pending", ("w4a4", 0.75): "failed"}.get((fmt, amount), score)
            trials.append(joint(amount, fmt, outcome))
    data = load_run(run_of(trials))

    table1 = schedules_table(data)
    assert table1.columns == ["channel sparsity", "schedule", header(data.metric), "Δ top-1 accuracy"]
    assert table1.title == "Table 1. Comparing pruning schedules (seed 003)"
    assert _texts(table1) == [
        ["Baseline", "Full Model", "90.00", "+0.00"],
        ["50% sparsity", "From Scratch", "76.00", "-14.00"],
        ["50% sparsity", "One-Shot", "77.00", "-13.00"],
        ["50% sparsity", "Stepwise", "78.00", "-12.00"],
        ["50% sparsity", "Layerwise", "88.00", "-2.00"],
        ["75% sparsity", "From Scratch", "73.50", "-16.50"],
        ["75% sparsity", "One-Shot", FAILED, "-"],
        ["75% sparsity", "Stepwise", "no trial", "-"],
        ["75% sparsity", "Layerwise", "76.50", "-13.50"],
    ]
    assert "activation_l1" in table1.note

    table2 = importance_table(data)
    assert [row[:3] for row in _texts(table2)] == [
        ["Baseline", "Full Model", "90.00"],
        ["50% sparsity", "Layerwise (A)", "88.00"],
        ["50% sparsity", "Layerwise (W)", "78.00"],
        ["75% sparsity", "Layerwise (A)", "76.50"],
        ["75% sparsity", "Layerwise (W)", "75.50"],
    ]

    table3 = quant_table(data)
    assert table3.columns[:3] == ["channel sparsity", "format", "from"]
    source = "joint: layerwise activation_l1 + QAT"
    assert _texts(table3) == [
        ["Baseline", "Full Model", "-", "90.00", "+0.00"],
        ["50% sparsity", "W8A8", source, "80.00", "-10.00"],
        ["50% sparsity", "W4A8", source, "75.00", "-15.00"],
        ["50% sparsity", "W4A4", source, "70.00", "-20.00"],
        ["75% sparsity", "W8A8", source, "80.00", "-10.00"],
        ["75% sparsity", "W4A8", source, "not run yet (pending)", "-"],
        ["75% sparsity", "W4A4", source, FAILED, "-"],
    ]


def test_the_old_cross_product_layout_compares_at_its_widest_format(run_of, structured, model_metrics):
    trials = [
        structured("one-shot", 0.5, "l1", "w8a8", 0.85),
        structured("one-shot", 0.5, "l1", "w4a4", 0.80),
        structured("layerwise", 0.5, "activation_l1", "w8a8", 0.86),
        structured("layerwise", 0.5, "l1", "w8a8", 0.84),
        structured("layerwise", 0.5, "activation_l1", "w4a4", 0.82),
        structured("layerwise", 0.75, "activation_l1", "w8a8", 0.78),
        (
            "aware_quant",
            "aware quant 8-bit",
            {"steps": [{"op": "quantize", "w_bits": 8, "a_bits": 8}], "finetune": {"lr": 0.1}},
            "done",
            model_metrics(0.89, 1000, 1.0, w_bits=8, a_bits=8),
            {},
        ),
    ]
    data = load_run(run_of(trials))

    table1 = schedules_table(data)
    assert table1.title.endswith(", at W8A8") and "no fp32 [structured] trial" in table1.note
    assert table1.columns[:3] == ["channel sparsity", "schedule", "importance"]  # one-shot used l1 only
    assert [row[:4] for row in _texts(table1)[1:]] == [
        ["50% sparsity", "One-Shot", "l1", "85.00"],
        ["50% sparsity", "Layerwise", "activation_l1", "86.00"],
        ["75% sparsity", "One-Shot", "-", "no trial"],
        ["75% sparsity", "Layerwise", "activation_l1", "78.00"],
    ]
    assert importance_table(data).title.endswith(", at W8A8")

    layerwise = "structured: layerwise, activation_l1"
    assert [row[:4] for row in _texts(quant_table(data))] == [
        ["Baseline", "Full Model", "-", "90.00"],
        ["Baseline", "W8A8", "aware_quant", "89.00"],
        ["50% sparsity", "W8A8", layerwise, "86.00"],
        ["50% sparsity", "W4A4", layerwise, "82.00"],
        ["75% sparsity", "W8A8", layerwise, "78.00"],
        ["75% sparsity", "W4A4", "-", "no trial"],
    ]


def test_the_seed_003_tables_are_left_out_without_their_trials(run_of, structured):
    data = load_run(run_of([structured("one-shot", 0.5, "l1", "fp32", 0.85)]))
    assert schedules_table(data) is None  # one schedule: nothing to compare
    assert importance_table(data) is None and quant_table(data) is None and seed004_table(data) is None


def _compress(stage, label, steps, finetune, outcome, trial, extra=None):
    config = {"kind": "compress", "source": "t00", "steps": steps, "finetune": finetune}
    return trial(stage, label, config, outcome, extra)


def test_the_seed_004_table_pairs_each_level_before_and_after_its_fine_tune(run_of, trial, structured):
    plan = {"epochs": 1, "lr": 0.1, "refine_epochs": 1}
    channels = [{"op": "channels", "amount": 0.3, "importance": "bn_gamma", "allocation": "global"}]
    harder = [{**channels[0], "amount": 0.7}]
    blocks = [{"op": "layers", "blocks": 2, "importance": "bn_gamma"}]
    gammas = {
        "bn_gamma_before": {"near_zero_share": 0.01, "channels": 100},
        "bn_gamma_after": {"near_zero_share": 0.4, "channels": 100},
    }
    removed = {"steps": {"layers": {"removed_blocks": ["stage2.1", "stage3.0"]}}}
    trials = [
        _compress(
            "slimming",
            "sparsity",
            [{"op": "bn_sparsity", "penalty": 0.001}],
            plan,
            0.88,
            trial,
            {"steps": gammas},
        ),
        _compress("slimming", "slim 30% as pruned", channels, None, 0.60, trial),
        _compress("slimming", "slim 30% @ lr 0.1", channels, plan, 0.87, trial),
        _compress("slimming", "slim 70% as pruned", harder, None, 0.20, trial),
        _compress("slimming", "slim 70% @ lr 0.1", harder, plan, "failed", trial),
        _compress("layer_prune", "2 blocks as pruned", blocks, None, 0.50, trial, removed),
        _compress("layer_prune", "2 blocks @ lr 0.1", blocks, plan, 0.86, trial, removed),
        structured("one-shot", 0.5, "bn_gamma", "fp32", 0.84, extra={"before_finetune": {"score": 0.30}}),
        structured("layerwise", 0.5, "bn_gamma", "fp32", 0.85),
        structured("from-scratch", 0.5, "bn_gamma", "fp32", 0.80),
    ]
    data = load_run(run_of(trials))
    table = seed004_table(data)
    assert table.columns[:6] == ["method", "level", "params", "MACs", "compression", "deployed speedup"]
    assert table.columns[6] == f"before fine-tune {header(data.metric)}"
    assert table.columns[8] == f"after fine-tune {header(data.metric)}"
    texts = _texts(table)
    assert [row[:2] for row in texts] == [
        ["original", "-"],
        ["sparsity training (L1 on BN γ)", "penalty 0.001"],
        ["network slimming", "30% channels (global)"],
        ["network slimming", "70% channels (global)"],
        ["layer pruning", "2 blocks: stage2.1, stage3.0"],
        ["bn_gamma channels, no sparsity training (one-shot)", "50% channels"],
        ["bn_gamma channels, no sparsity training (layerwise)", "50% channels"],
        ["bn_gamma channels, no sparsity training (from-scratch)", "50% channels"],
    ]
    assert texts[0][2:6] == ["1.00k", "50.00k", "1.00x", "1.00x onnxruntime-int8"]
    assert all(row[2:6] == ["500", "50.00k", "2.00x", "2.00x onnxruntime-int8"] for row in texts[1:])
    assert [row[6:] for row in texts] == [
        ["90.00", "+0.00", "n/a: not pruned", "-"],
        ["88.00", "-2.00", "n/a: not pruned", "-"],
        ["60.00", "-30.00", "87.00", "-3.00"],
        ["20.00", "-70.00", FAILED, "-"],
        ["50.00", "-40.00", "86.00", "-4.00"],
        ["30.00", "-60.00", "84.00", "-6.00"],
        ["pruned while fine-tuning", "-", "85.00", "-5.00"],
        ["none: re-initialised", "-", "80.00", "-10.00"],
    ]
    assert "1.0% -> 40.0% of 100 channels" in table.note


def test_the_markdown_and_html_reports_show_the_seed_tables(run_of, structured, joint):
    trials = [
        structured("one-shot", 0.5, "activation_l1", "fp32", 0.85),
        structured("layerwise", 0.5, "activation_l1", "fp32", 0.86),
        joint(0.5, "w8a8", 0.84),
    ]
    run = run_of(trials)
    keys = [table.key for table in all_tables(load_run(run))]
    assert keys.index("seed003_schedules") < keys.index("seed003_quant") < keys.index("structured")
    written = write_report(run)
    markdown, page = written["markdown"].read_text(), written["html"].read_text()
    for title in (
        "Table 1. Comparing pruning schedules (seed 003)",
        "Table 3. Channel pruning with quantized",
    ):
        assert f"### {title}" in markdown and f"<h2>{title}" in page
    assert (
        "joint: layerwise activation_l1 + QAT" in markdown and "joint: layerwise activation_l1 + QAT" in page
    )
