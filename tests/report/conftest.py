"""A synthetic run directory with one or more finished trials of every stage, written through the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from prunequant.lab.budget import Budget
from prunequant.lab.select import best_trial
from prunequant.lab.store import ResultsStore
from prunequant.tasks import default_task

PROFILE = {
    "total": {
        "params": 1000,
        "nonzero_params": 1000,
        "macs": 50_000,
        "flops": 100_000,
        "activation_bytes": 4096,
        "latency_ms": 1.25,
    },
    "groups": [
        {
            "name": "features",
            "layers": 4,
            "params": 800,
            "params_share": 0.8,
            "nonzero_params": 800,
            "macs": 45_000,
            "flops": 90_000,
            "activation_bytes": 3072,
            "latency_ms": 1.0,
        },
        {
            "name": "classifier",
            "layers": 2,
            "params": 200,
            "params_share": 0.2,
            "nonzero_params": 200,
            "macs": 5_000,
            "flops": 10_000,
            "activation_bytes": 1024,
            "latency_ms": 0.25,
        },
    ],
}


def _metrics(top1, size, latency, *, params=1000, nonzero=1000, w_bits=32, a_bits=32, weight_mb=0.032):
    return {
        "score": top1,
        "metrics": {"top1": top1, "top5": 1.0},
        "loss": 0.3,
        "val_score": top1,
        "params": params,
        "nonzero_params": nonzero,
        "macs": 50_000,
        "effective_macs": 50_000 * nonzero // params,
        "w_bits": w_bits,
        "a_bits": a_bits,
        "weight_mb": weight_mb,
        "activation_mb": 0.008,
        "pd": 100 * top1 / (weight_mb + 0.008),
        "file_bytes": size,
        "latency_fp32_ms": latency,
        "speedup": round(1.0 / latency, 4),  # the original runs in 1.0 ms
    }


def _prune(amount):
    return [{"op": "prune", "amount": amount, "scope": "global", "include_bias": False}]


def _quant(bits):
    return [{"op": "quantize", "w_bits": bits, "a_bits": 32, "granularity": "tensor", "calib_batches": 4}]


FINETUNE = {"epochs": 1, "lr": 0.1, "refine_epochs": 1}
PHASES = [{"score": 0.86, "lr": 0.1, "epochs": 1}, {"score": 0.89, "lr": 0.01, "epochs": 1}]


def _trials() -> list[tuple]:
    """(stage, label, config, status, metrics, extra) of every trial."""
    structured = {"kind": "structured", "amount": 0.5, "importance": "l1", "schedule": "one-shot", "steps": 2}
    return [
        (
            "profile",
            "original model",
            {"kind": "baseline"},
            "done",
            _metrics(0.90, 4000, 1.0),
            {"profile": PROFILE, "layers": ["features.0", "features.3", "classifier.0"]},
        ),
        (
            "post_prune",
            "post prune 25%",
            {"steps": _prune(0.25)},
            "done",
            _metrics(0.89, 3500, 1.01, nonzero=760),
            {},
        ),
        (
            "post_prune",
            "post prune 50%",
            {"steps": _prune(0.5)},
            "done",
            _metrics(0.80, 3000, 0.99, nonzero=520),
            {},
        ),
        (
            "aware_prune",
            "aware prune 50% @ lr 0.1",
            {"steps": _prune(0.5), "finetune": FINETUNE},
            "done",
            _metrics(0.89, 3000, 1.0, nonzero=520),
            {"phases": PHASES},
        ),
        (
            "post_quant",
            "post quant 8-bit",
            {"steps": _quant(8)},
            "done",
            _metrics(0.90, 1500, 1.0, w_bits=8, weight_mb=0.008, nonzero=995),
            {"steps": {"zero_share": 0.005}},
        ),
        (
            "post_quant",
            "post quant 4-bit",
            {"steps": _quant(4)},
            "done",
            _metrics(0.70, 1000, 1.0, w_bits=4, weight_mb=0.004, nonzero=850),
            {"steps": {"zero_share": 0.15}},
        ),
        (
            "aware_quant",
            "aware quant 4-bit @ lr 0.1",
            {"steps": _quant(4), "finetune": FINETUNE},
            "done",
            _metrics(0.88, 1000, 1.0, w_bits=4, weight_mb=0.004, nonzero=850),
            {"phases": PHASES},
        ),
        (
            "combine",
            "combined: prune 50% + 4-bit",
            {"steps": _prune(0.5) + _quant(4), "finetune": FINETUNE},
            "done",
            _metrics(0.87, 800, 1.0, w_bits=4, weight_mb=0.002, nonzero=450),
            {},
        ),
        (
            "structured",
            "one-shot channels 50% l1 fp32",
            {**structured, "format": "fp32"},
            "done",
            _metrics(0.86, 2000, 0.5, params=500, nonzero=500),
            {},
        ),
        (
            "structured",
            "one-shot channels 50% l1 w8a8",
            {**structured, "format": "w8a8"},
            "done",
            _metrics(0.85, 900, 0.5, params=500, nonzero=500, w_bits=8, a_bits=8, weight_mb=0.004),
            {},
        ),
        (
            "sensitivity",
            "sensitivity features.0",
            {"kind": "sensitivity"},
            "done",
            {},
            {
                "layer": "features.0",
                "params": 100,
                "reference": 0.9,
                "amount": {"0.5": 0.85, "0.9": 0.4},
                "bits": {"4": 0.88, "2": 0.3},
                "drop": {"amount": {"0.5": 0.05, "0.9": 0.5}, "bits": {"4": 0.02, "2": 0.6}},
            },
        ),
        (
            "sensitivity",
            "sensitivity classifier.0",
            {"kind": "sensitivity"},
            "done",
            {},
            {
                "layer": "classifier.0",
                "params": 200,
                "reference": 0.9,
                "amount": {"0.5": 0.9, "0.9": 0.88},
                "bits": {"4": 0.9, "2": 0.7},
                "drop": {"amount": {"0.5": 0.0, "0.9": 0.02}, "bits": {"4": 0.0, "2": 0.2}},
            },
        ),
        ("search", "search: a", {"params": {"amount": 0.3}}, "done", _metrics(0.88, 1200, 0.7), {}),
        ("search", "search: b", {"params": {"amount": 0.6}}, "done", _metrics(0.84, 700, 0.8), {}),
        ("search", "search: c", {"params": {"amount": 0.9}}, "pruned", {"val_score": 0.3}, {}),
        (
            "export",
            "export original model",
            {"kind": "export"},
            "done",
            {
                "score": 0.895,
                "metrics": {"top1": 0.895, "top5": 1.0},
                "val_score": 0.9,
                "latency_fp32_ms": 0.5,
                "latency_int8_ms": 0.25,
                "file_bytes": 1200,
            },
            {
                "fp32": {"score": 0.9},
                "fp32_bytes": 4100,
                "precision": "int8",
                "deployed_ms": 0.25,
                "parity": {
                    "max_abs_diff": 0.125,
                    "mean_abs_diff": 0.01,
                    "mean_rel_diff": 0.02,
                    "agreement": 0.99,
                },
            },
        ),
        (
            "bench",
            "bench 2 models",
            {"kind": "bench"},
            "done",
            {},
            {
                "rows": [
                    {
                        "model": "original (torch)",
                        "runtime": "torch",
                        "batch": 1,
                        "median_ms": 1.0,
                        "p90_ms": 1.2,
                        "ratio_vs_first": 1.0,
                        "bytes": 4000,
                    },
                    {
                        "model": "original (onnxruntime int8)",
                        "runtime": "onnxruntime",
                        "batch": 1,
                        "median_ms": 0.25,
                        "p90_ms": 0.3,
                        "ratio_vs_first": 4.0,
                        "bytes": 1200,
                    },
                ],
                "threads": 2,
                "rounds": 3,
                "repeats": 5,
                "malloc_tuned": False,
            },
        ),
        ("post_prune", "post prune 90%", {"steps": _prune(0.9)}, "failed", {}, {}),
    ]


def _deploy(stage: str, metrics: dict) -> dict | None:
    """extra["deploy"] as a model trial records it: masked pruning has no faster form; every other model
    one int8 form, as fast as its `speedup` column (spread +-5%), scored like the trial."""
    if stage in ("post_prune", "aware_prune"):
        return {"batch": 64, "forms": [], "no_speed_gain": "no speed gain: dense kernels"}
    if "speedup" not in metrics or stage in ("export", "bench"):
        return None
    value = metrics["speedup"]
    speed = {"speedup": value, "p10": 0.95 * value, "p90": 1.05 * value, "median_ms": 1.0 / value}
    form = {
        "runtime": "onnxruntime-int8",
        "file": "model.int8.onnx",
        "precision": "int8",
        "val_score": metrics["val_score"],
        "bytes": metrics["file_bytes"],
        "speed": {
            "1": {**speed, "original_ms": 1.0, "noisy": False},
            "64": {**speed, "original_ms": 1.0, "noisy": False},
        },
    }
    return {"batch": 64, "forms": [form]}


def write_run(run_dir: Path, trials: list[tuple] | None = None) -> Path:
    """Fill `run_dir` with `trials` ((stage, label, config, status, metrics, extra); "failed" and
    "pending" trials are recorded as such), by default the synthetic trials; return it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "recipe.toml").write_text("[task]\nmax_drop = 0.05  # <budget>\n")
    budget = Budget(default_task().metric(), 0.05)
    with ResultsStore(run_dir / "results.sqlite") as store:
        store.set_meta(
            "recipe", {"name": "synthetic", "run": {"objective": "size"}, "task": {"max_drop": 0.05}}
        )
        store.set_meta("task", default_task().describe())
        store.set_meta("budget", budget.to_dict())
        store.set_meta("combine_choice", {"amount": 0.5, "bits": 4, "prune_trial": "x", "quant_trial": "y"})
        for index, (stage, label, config, status, metrics, extra) in enumerate(trials or _trials()):
            trial = f"t{index:02d}"
            store.add([(trial, stage, label, config)])
            if status == "pending":
                continue
            store.start(trial)
            if status == "failed":
                store.fail(trial, "RuntimeError: out of luck", 0.5)
            else:
                deploy = _deploy(stage, metrics)
                extra = extra if deploy is None else {**extra, "deploy": deploy}
                store.finish(trial, metrics, status=status, extra=extra, duration_s=2.0 + index)
        rows = store.rows()
        best = best_trial(rows, rows[0], budget, "size")  # what the lab records at the end of a run
        store.set_meta("best", best.trial_id if best else None)
    return run_dir


@pytest.fixture
def run_of(tmp_path: Path):
    """write(trials) -> a run directory in tmp_path holding the original model's trial and `trials`."""

    def write(trials: list[tuple]) -> Path:
        return write_run(tmp_path / "trials", [_trials()[0], *trials])

    return write


@pytest.fixture(scope="session")
def model_metrics():
    """metrics(top1, size, latency, *, params, nonzero, ...) -> a model trial's metric columns."""
    return _metrics


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("report") / "run")


@pytest.fixture(scope="module")
def synthetic_report(synthetic_run: Path) -> dict[str, Path]:
    """The report of the synthetic run, written once per test module."""
    from prunequant.report import write_report

    return write_report(synthetic_run)


@pytest.fixture
def empty_run(tmp_path: Path) -> Path:
    """A run whose only trial (the baseline) failed."""
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    with ResultsStore(run_dir / "results.sqlite") as store:
        store.add([("p", "profile", "original model", {})])
        store.start("p")
        store.fail("p", "DataError: no data")
    return run_dir


@pytest.fixture
def baseline_extra() -> dict:
    """The profile stage's extra of the synthetic baseline (Table I's source)."""
    return {"profile": PROFILE, "layers": ["features.0", "features.3", "classifier.0"]}
