"""End to end: structured pruning, sensitivity, search, export and bench stages of one tiny run."""

import importlib.util

import pytest

from prunequant.lab import ResultsStore, load_recipe, run_recipe
from prunequant.lab.env import budget_of
from prunequant.lab.select import within_budget

HAS_OPTUNA = importlib.util.find_spec("optuna") is not None

SEARCH = """
[search]
trials = 3
channel_amounts = [0.0, 0.25]
bits = [32, 8]
epochs = [0, 1]
allocations = ["global", "sensitivity"]
"""
STAGES = """
[post_prune]
amounts = [0.5]

[structured]
amounts = [0.5]
schedules = ["one-shot", "layerwise"]
formats = ["fp32", "w8a8"]
epochs = 1
refine_epochs = 0

[sensitivity]
amounts = [0.5]
bits = [4]

[export]
calib_batches = 2

[bench]
batch_sizes = [1]
repeats = 2
rounds = 1
"""


@pytest.fixture(scope="module")
def rows(tmp_path_factory, tiny_base):
    folder = tmp_path_factory.mktemp("stages")
    (folder / "r.toml").write_text(tiny_base + STAGES + (SEARCH if HAS_OPTUNA else ""))
    recipe = load_recipe(folder / "r.toml")
    summary = run_recipe(recipe, folder / "run", progress=False)
    with ResultsStore(folder / "run" / "results.sqlite") as store:
        found = store.rows()
    assert summary["failed"] == 0, [(row.label, row.error) for row in found if row.error]
    return (
        recipe,
        folder / "run",
        {stage: [r for r in found if r.stage == stage] for stage in {r.stage for r in found}},
    )


def test_structured_pruning_removes_channels_and_quantizes(rows):
    _, _, by_stage = rows
    baseline, structured = by_stage["profile"][0], by_stage["structured"]
    assert [(r.config["schedule"], r.config["format"]) for r in structured] == [
        ("one-shot", "fp32"),
        ("one-shot", "w8a8"),
        ("layerwise", "fp32"),
        ("layerwise", "w8a8"),
    ]
    for row in structured:
        assert row.get("params") < 0.6 * baseline.get("params")
        assert row.get("macs") < baseline.get("macs")
    assert [(r.get("w_bits"), r.get("a_bits")) for r in structured] == [(32, 32), (8, 8)] * 2
    assert structured[0].extra["channels"][0]["channels_removed"] > 0
    for row in structured:  # seed 004's "before fine-tune": the one-shot model scored right after pruning
        assert ("before_finetune" in row.extra) is (row.config["schedule"] == "one-shot")
    assert 0.0 <= structured[0].extra["before_finetune"]["score"] <= 1.0


def test_sensitivity_has_one_trial_per_conv_and_linear_layer(rows):
    _, _, by_stage = rows
    layers = by_stage["profile"][0].extra["layers"]
    sensitivity = by_stage["sensitivity"]
    assert [r.extra["layer"] for r in sensitivity] == layers and len(layers) == 7
    for row in sensitivity:
        assert set(row.extra["amount"]) == {"0.5"} and set(row.extra["bits"]) == {"4"}
        assert 0.0 <= row.extra["reference"] <= 1.0


@pytest.mark.skipif(not HAS_OPTUNA, reason="needs the optional extra 'search' (optuna)")
def test_search_runs_its_trials_and_its_best_respects_the_budget(rows):
    recipe, _, by_stage = rows
    baseline, search = by_stage["profile"][0], by_stage["search"]
    assert sum(r.finished for r in search) == 3
    for row in search:
        assert set(row.config["params"]) <= {
            "amount",
            "channel_amount",
            "allocation",
            "epochs",
            "bits:features",
            "bits:classifier",
        }
        assert "amount" in row.config["params"]
    feasible = [r for r in search if r.status == "done" and within_budget(r, baseline, budget_of(recipe))]
    assert all(r.get("file_bytes") > 0 for r in feasible)


def test_export_writes_onnx_files_and_times_them(rows):
    _, run_dir, by_stage = rows
    exports = by_stage["export"]
    assert exports[0].label == "export original model"
    for row in exports:
        assert row.checkpoint.endswith(".onnx") and (run_dir / row.checkpoint).is_file()
        assert (run_dir / "artifacts" / row.trial_id / "model.fp32.onnx").is_file()
        assert row.get("latency_fp32_ms") > 0 and 0.0 <= row.get("top1") <= 1.0
    assert exports[0].extra["precision"] == "int8" and exports[0].get("latency_int8_ms") > 0
    assert abs(exports[0].extra["fp32"]["metrics"]["top1"] - by_stage["profile"][0].get("top1")) < 1e-6
    parity = exports[0].extra["parity"]
    assert 0.9 <= parity["agreement"] <= 1.0 and parity["max_abs_diff"] >= 0 and "output" in parity["outputs"]


def test_bench_times_every_candidate_against_the_baseline(rows):
    _, _, by_stage = rows
    (bench,) = by_stage["bench"]
    entries = bench.extra["entries"]
    assert len(bench.extra["rows"]) == len(entries) == len(by_stage["export"]) * 2
    assert bench.extra["rows"][0]["ratio_vs_first"] == 1.0
    assert [r["runtime"] for r in bench.extra["rows"]] == ["torch"] * (len(entries) // 2) + [
        "onnxruntime"
    ] * (len(entries) // 2)
