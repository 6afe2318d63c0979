import dataclasses

import pytest

from prunequant.lab.store import METRIC_COLUMNS, TrialRow
from prunequant.report import load_run
from prunequant.report.layout import summary
from prunequant.report.tables import (
    all_tables,
    bench_tables,
    export_table,
    pd_table,
    profile_table,
    search_table,
    structured_table,
    sweep_table,
    trials_table,
)


def _texts(table, index):
    return [text for text, _ in table.rows[index]]


@pytest.fixture
def data(synthetic_run):
    return load_run(synthetic_run)


def test_the_run_loads_with_its_baseline_and_best_model(data):
    assert data.name == "synthetic" and data.budget["max_drop"] == 0.05 and data.objective == "size"
    assert data.metric.name == "top1" and [spec.name for spec in data.metrics] == ["top1", "top5"]
    assert data.baseline.trial_id == "t00"
    assert data.best.label == "combined: prune 50% + 4-bit"  # smallest file within 5 points
    assert len(data.rows) == 18 and len(data.models()) == 11


def test_table_1_profiles_each_module_group_and_the_total(data):
    table = profile_table(data)
    assert [text for text, _ in (row[0] for row in table.rows)] == ["features", "classifier", "TOTAL"]
    assert _texts(table, 0) == ["features", "4", "800", "80.0", "800", "45.00k", "90.00k", "3.0", "1.000"]
    assert _texts(table, 2) == ["TOTAL", "6", "1.00k", "100.0", "1.00k", "50.00k", "100.00k", "4.0", "1.250"]
    assert table.highlight == {2}


def test_table_2_lists_post_aware_and_combined_like_seed_000(data):
    table = sweep_table(data)
    assert [row[0][0] for row in table.rows] == [
        "Original",
        "Post",
        "Post",
        "Aware",
        "Post",
        "Post",
        "Aware",
        "Combined",
    ]
    assert _texts(table, 2) == [
        "Post",
        "50%",
        "32 bits",
        "-",
        "80.00",
        "-10.00",
        "100.00",
        "48.0",
        "2.9",
        "no speed gain: dense kernels",  # masked zeros: no eager "speedup" shown, ever
        "4.0",
    ]
    assert _texts(table, 5)[:5] == ["Post", "15.00%", "4 bits", "-", "70.00"]  # zero share made by rounding
    assert _texts(table, 3)[3] == "0.1"
    assert table.highlight == {7}  # the best model under budget
    assert table.rows[2][4][1] == 0.80  # sort keys are the raw values


def test_table_4_ranks_performance_density(data):
    table = pd_table(data)
    assert len(table.rows) == 12
    assert _texts(table, 0)[:3] == ["combined: prune 50% + 4-bit", "4", "32"]
    assert _texts(table, 0)[-1] == "8,700.0"
    keys = [row[-1][1] for row in table.rows]
    assert keys == sorted(keys, reverse=True)


def test_structured_search_export_and_bench_tables(data):
    structured = structured_table(data)
    assert _texts(structured, 1) == [
        "one-shot",
        "50%",
        "l1",
        "W8A8",
        "500",
        "50.00k",
        "85.00",
        "-5.00",
        "2.00x onnxruntime-int8",
        "7,083.3",
    ]
    search = search_table(data)
    assert [row[1][0] for row in search.rows] == ["done", "done", "pruned"]
    assert [row[-2][0] for row in search.rows] == ["yes", "yes", ""] and search.highlight == {0, 1}
    assert [row[-1][0] for row in search.rows] == ["yes", "", ""]  # a is faster and more accurate than b
    assert _texts(export_table(data), 0) == [
        "original model",
        "int8",
        "90.00",
        "89.50",
        "0.1250",
        "2.00",
        "0.500",
        "0.250",
        "2.00x",
        "4.0",
        "1.2",
    ]
    (bench,) = bench_tables(data)
    assert [row[5][0] for row in bench.rows] == ["1.00x", "4.00x"] and "NOT set" in bench.note


def test_all_trials_are_listed_with_their_errors(data):
    table = trials_table(data)
    assert len(table.rows) == 18 and table.rows[-1][-1][0] == "RuntimeError: out of luck"
    assert [t.key for t in all_tables(data)] == [
        "profile",
        "deploy",
        "sweep",
        "pd",
        "seed003_quant",  # seed 003 Table 3 from the one-shot W8A8 trial
        "structured",
        "search",
        "export",
        "bench",
        "trials",
    ]


def test_the_summary_states_baseline_best_gains_and_levels(data):
    lines = summary(data).lines
    assert lines[0] == "18 trials: 16 done, 1 stopped early, 1 failed."
    assert lines[1].startswith(
        "Task: classification; budget on validation top-1 accuracy (%, higher is better): "
        "at most 5.00 point(s) of top-1 accuracy below the original"
    )
    assert lines[2] == (
        "Original: top-1 accuracy 90.00%, 1,000 params, 3.9 KB, 1.000 ms per batch of 1 in torch eager fp32."
    )
    assert lines[3] == (  # no eager "speed" of a compressed model, ever
        "Best under budget (not shipped): combined: prune 50% + 4-bit: top-1 accuracy 87.00% (-3.00 pts), "
        "0.8 KB (5.00x smaller)."
    )
    assert lines[4] == "Combined best levels: pruning 50%, quantization 4 bits."


def _row(score, file_bytes):
    metrics = {**dict.fromkeys(METRIC_COLUMNS), "score": score, "file_bytes": file_bytes}
    return TrialRow("t", "x", "x", {}, "done", None, 1, metrics, None, None, None, None, {})


def test_the_pareto_front_keeps_the_non_dominated_points_in_the_metric_direction(data):
    make_row = _row
    rows = [
        a := make_row(0.80, 100),
        make_row(0.70, 150),
        b := make_row(0.85, 200),
        make_row(0.85, 250),
        c := make_row(0.90, 300),
        make_row(None, 50),
    ]
    assert data.pareto_front(rows, "size") == [a, b, c]
    lower = dataclasses.replace(
        data,
        task={
            "name": "t",
            "primary": "epe",
            "metrics": [{"name": "epe", "unit": "px", "higher_is_better": False, "label": "EPE"}],
        },
        budget={"metric": "epe"},
    )
    rows = [make_row(2.0, 100), d := make_row(1.0, 200)]
    assert lower.pareto_front(rows, "size") == [rows[0], d]
    assert lower.metric.title == "EPE (px, lower is better)"
