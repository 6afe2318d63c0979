"""Side-by-side bench: row layout, ratios against the first entry, sizes, memory and malloc reporting."""

from __future__ import annotations

import pytest
import torch

from prunequant.errors import ConfigError
from prunequant.export.bench import MALLOC_ENV, bench, malloc_tuned, torch_candidate
from prunequant.export.onnx_fp32 import export_onnx
from prunequant.models import save_checkpoint


@pytest.fixture(scope="module")
def files(trained_tiny, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    checkpoint = save_checkpoint(trained_tiny, folder / "tiny.pt")
    onnx_path = export_onnx(trained_tiny, folder / "tiny.onnx", torch.randn(1, 1, 8, 8))
    return checkpoint, onnx_path


def test_rows_are_batch_major_with_ratios_against_the_first(files):
    checkpoint, onnx_path = files
    report = bench([checkpoint, onnx_path], [1, 4], threads=1, rounds=2, repeats=3, warmup=1)
    assert [(row.model, row.runtime, row.batch) for row in report.rows] == [
        (str(checkpoint), "torch", 1),
        (str(onnx_path), "onnxruntime", 1),
        (str(checkpoint), "torch", 4),
        (str(onnx_path), "onnxruntime", 4),
    ]
    for first, other in (report.rows[:2], report.rows[2:]):
        assert first.ratio_vs_first == 1.0
        assert other.ratio_vs_first == pytest.approx(first.median_ms / other.median_ms)
    assert all(0 < row.median_ms <= row.p90_ms for row in report.rows)
    assert [row.bytes for row in report.rows[:2]] == [checkpoint.stat().st_size, onnx_path.stat().st_size]
    assert (report.threads, report.rounds, report.repeats) == (1, 2, 3)
    assert report.malloc_tuned == malloc_tuned() and report.memory == "not measured"
    assert report.rows[0].peak_rss_delta_mb is None
    assert report.markdown().splitlines()[2].startswith(f"| {checkpoint} | torch | 1 |")


def test_torch_threads_are_restored(files):
    before = torch.get_num_threads()
    bench([files[1]], [1], threads=1, rounds=1, repeats=1, warmup=0)
    assert torch.get_num_threads() == before


def test_in_memory_candidates_and_peak_memory_of_files(trained_tiny, files):
    live = torch_candidate("live", trained_tiny, (1, 8, 8))
    report = bench([live, files[1]], [2], threads=1, rounds=1, repeats=1, warmup=0, memory=True)
    in_memory, on_disk = report.rows
    assert in_memory.peak_rss_delta_mb is None and in_memory.bytes is None
    assert on_disk.peak_rss_delta_mb > 0
    assert "VmHWM" in report.memory


def test_bad_entries_are_config_errors(files, tmp_path):
    with pytest.raises(ConfigError, match="give .pt checkpoints"):
        bench([tmp_path / "model.tflite"], [1])
    with pytest.raises(ConfigError, match="nothing to bench"):
        bench([], [1])
    with pytest.raises(ConfigError, match="batch size must be"):
        bench([files[1]], [0])
    other = export_onnx(torch.nn.Conv2d(3, 2, 3), tmp_path / "rgb.onnx", torch.randn(1, 3, 8, 8))
    with pytest.raises(ConfigError, match="different input shapes"):
        bench([files[1], other], [1])


def test_malloc_tuned_ignores_settings_made_after_start(monkeypatch):
    before = malloc_tuned()  # the restarted CLI's True is checked in test_cli.py
    for key, value in MALLOC_ENV.items():
        monkeypatch.setenv(key, value)  # too late for glibc, so it must not change the answer
    assert malloc_tuned() is before
