"""OnnxRunner: called like a torch model, scored by `evaluate`, timed; bad files are one-line errors."""

from __future__ import annotations

import pytest
import torch

from prunequant.errors import ExportError
from prunequant.export.onnx_fp32 import export_onnx
from prunequant.export.runtime import OnnxRunner
from prunequant.timing import Timing, threads
from prunequant.training import evaluate


@pytest.fixture(scope="module")
def exported(trained_tiny, tmp_path_factory):
    return export_onnx(
        trained_tiny, tmp_path_factory.mktemp("runtime") / "tiny.onnx", torch.randn(1, 1, 8, 8)
    )


def test_evaluate_scores_the_runner_like_the_torch_model(trained_tiny, exported, blob_data):
    runner = OnnxRunner(exported, threads=1)
    on_torch, on_onnx = evaluate(trained_tiny, blob_data.test), evaluate(runner, blob_data.test)
    assert on_onnx.n == on_torch.n == 384
    assert on_onnx.top1 == on_torch.top1
    assert on_onnx.loss == pytest.approx(on_torch.loss, abs=1e-5)


def test_runner_returns_float_logits_and_describes_itself(exported):
    runner = OnnxRunner(exported, threads=1)
    logits = runner(torch.randn(5, 1, 8, 8, dtype=torch.float64))
    assert isinstance(logits, torch.Tensor) and logits.dtype == torch.float32 and logits.shape == (5, 4)
    assert runner.sample_shape == (1, 8, 8)
    assert runner.precision == "fp32" and runner.bytes == exported.stat().st_size
    assert runner.session.get_session_options().intra_op_num_threads == 1
    assert "threads=1" in repr(runner)


def test_latency_uses_the_timing_module(exported):
    stats = OnnxRunner(exported, threads=1).latency(torch.randn(2, 1, 8, 8), warmup=1, repeats=4)
    assert isinstance(stats, Timing) and stats.latency.count == 4 and 0 < stats.p10_ms <= stats.median_ms


def test_default_threads_fall_back_to_one_on_a_busy_machine(exported, monkeypatch):
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1})
    runner = OnnxRunner(exported)
    assert runner.threads == 1 and runner.thread_plan.oversubscribed and runner.thread_plan.requested == 2


def test_missing_and_corrupt_files_are_export_errors(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        OnnxRunner(tmp_path / "nope.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage that is not protobuf \xff\xff")
    with pytest.raises(ExportError, match="not a readable ONNX model"):
        OnnxRunner(corrupt)


def test_threads_must_be_positive(exported):
    with pytest.raises(ValueError, match="threads must be an integer"):
        OnnxRunner(exported, threads=-2)
