"""PT2E artifacts compiled with inductor (freezing), each in its own process: the runner's timing and
parity, bench's .pt2 candidates and `prunequant export --format pt2e`. One tiny CNN; each test compiles it
once or twice in a fresh process (about 8 s each on idle cores with inductor's kernel cache warm, 40 s under
heavy load), so they are marked slow and are the only compile tests."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("torchao", reason="the PT2E path needs torchao (pip install 'prunequant[native]')")

from prunequant.cli.main import main  # noqa: E402
from prunequant.data import load_dataset, make_loaders  # noqa: E402
from prunequant.export.bench import bench  # noqa: E402
from prunequant.export.pt2e_int8 import RUNTIME, export_pt2e_int8  # noqa: E402
from prunequant.export.pt2e_runner import BASELINE_MODULE, run_pt2e  # noqa: E402
from prunequant.models import build, save_checkpoint  # noqa: E402

from .conftest import SAMPLE_SHAPE  # noqa: E402


@pytest.fixture(scope="module")
def tiny_artifact(trained_tiny, blob_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("compiled") / "tiny.pt2"
    export_pt2e_int8(trained_tiny, path, torch.randn(1, *SAMPLE_SHAPE), blob_data.train, calib_batches=4)
    return path


@pytest.mark.slow
def test_runner_times_against_the_eager_module_and_checks_compiled_parity(
    tiny_artifact, trained_tiny, blob_data
):
    run = run_pt2e(
        tiny_artifact,
        trained_tiny,
        torch.randn(1, *SAMPLE_SHAPE),
        batches=(64,),
        rounds=2,
        repeats=2,
        warmup=1,
        parity_loader=blob_data.test,
        parity_batches=2,
        reference=trained_tiny,
    )
    assert run.runtime == RUNTIME and run.threads == 1 and run.baseline == BASELINE_MODULE
    (timing,) = run.timings
    assert timing.batch == 64 and timing.baseline_ms > 0 and timing.candidate_ms > 0
    # the speedup is the ratio of the two medians; p10-p90 spread the per-round ratios, so the speedup
    # need not lie inside them (it did not, 1.300 against 1.228-1.273, on a fresh-clone CI run)
    assert timing.speedup == pytest.approx(timing.baseline_ms / timing.candidate_ms)
    assert 0 < timing.speedup_p10 <= timing.speedup_p90
    assert run.int8_layers == 7 and timing.int8_kernels == 7 and run.notes == []
    assert run.parity["n_batches"] == 2 and run.parity["agreement"] >= 0.95
    with torch.inference_mode():
        scale = float(trained_tiny(next(iter(blob_data.test))[0]).abs().mean())
    assert run.parity["mean_abs_diff"] < 0.05 * scale


@pytest.mark.slow
def test_bench_times_a_pt2_candidate_in_its_worker(tiny_artifact, trained_tiny, tmp_path):
    checkpoint = save_checkpoint(trained_tiny, tmp_path / "tiny.pt", input_shape=list(SAMPLE_SHAPE))
    report = bench([checkpoint, tiny_artifact], batches=(8,), threads=1, rounds=1, repeats=2, warmup=1)
    baseline, candidate = report.rows
    assert (baseline.runtime, candidate.runtime) == ("torch", RUNTIME)
    assert (
        candidate.batch == 8 and candidate.median_ms > 0 and candidate.bytes == tiny_artifact.stat().st_size
    )


@pytest.fixture(scope="module")
def float_checkpoint(tmp_path_factory):
    from .conftest import settle_batchnorm

    model = settle_batchnorm(build("small_cnn", width=4), (3, 32, 32))
    return save_checkpoint(model, tmp_path_factory.mktemp("cli") / "float.pt")


DATA = ["--dataset", "synthetic", "--limit", "256", "--batch-size", "64"]


@pytest.mark.slow
def test_cli_export_pt2e_json_contract(capsys, float_checkpoint, tmp_path):
    target = tmp_path / "m.pt2"
    argv = ["export", "--checkpoint", str(float_checkpoint), "--format", "pt2e", "-o", str(target), *DATA]
    assert main([*argv, "--calib-batches", "2", "--parity-batches", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["format"] == "pt2e" and result["output"] == str(target) and result["runtime"] == RUNTIME
    assert result["bytes"] == target.stat().st_size and result["calib_batches"] == 2
    assert result["layers"] == "7 of 7 conv/linear layers int8" and result["float_layers"] == {}
    assert result["parity"]["n_batches"] == 1 and result["parity"]["agreement"] >= 0.9


def test_cli_export_pt2e_errors_are_one_line(capsys, float_checkpoint, tmp_path):
    base = ["export", "--checkpoint", str(float_checkpoint), "--format", "pt2e"]
    for argv, message in (
        ([*base, "-o", str(tmp_path / "m.pt2")], "--format pt2e calibrates on data: pass --dataset"),
        ([*base, "-o", str(tmp_path / "m.onnx"), *DATA], "give -o NAME.pt2"),
        ([*base, "-o", str(tmp_path / "m.pt2"), "--ort-per-tensor", *DATA], "does not use: --ort-per-tensor"),
    ):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []


def test_synthetic_cli_data_is_what_the_contract_test_assumes():
    loaders = make_loaders(load_dataset("synthetic", limit=256), 64)
    assert next(iter(loaders.test))[0].shape[1:] == (3, 32, 32)
