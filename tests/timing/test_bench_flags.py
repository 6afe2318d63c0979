"""bench flags an int8 ONNX slower than its fp32 ONNX with the cause read from the file, and noisy rows."""

from __future__ import annotations

import dataclasses
import itertools
import json

import onnx
import pytest
import torch
from torch import nn

from prunequant.export.bench import bench, onnx_candidate
from prunequant.export.coverage import FLOAT_LAYERS_KEY, FLOAT_NORMS_KEY, FLOAT_OPS_KEY, INT8_LAYERS_KEY
from prunequant.export.int8_speed import model_key, slow_int8_cause
from prunequant.export.onnx_fp32 import export_onnx, set_metadata, set_precision
from prunequant.export.onnx_int8 import WEIGHT_DTYPE_KEY
from prunequant.export.runtime import OnnxRunner

pytestmark = pytest.mark.usefixtures("idle")


@pytest.fixture(scope="module")
def fp32_file(tmp_path_factory):
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3)).eval()
    return export_onnx(model, tmp_path_factory.mktemp("flags") / "net.onnx", torch.randn(1, 1, 8, 8))


def labelled_int8(fp32_file, name: str, metadata: dict[str, str]):
    """A copy of the fp32 file labelled int8 with the coverage metadata export/coverage.py writes."""
    proto = onnx.load(str(fp32_file))
    set_precision(proto, "int8")
    set_metadata(proto, metadata)
    path = fp32_file.with_name(name)
    onnx.save(proto, str(path))
    return path


def timed(clock, path, ms):
    """The file as a bench candidate whose calls take `ms` (a float or an iterator) on the fake clock."""
    candidate = onnx_candidate(path.name, OnnxRunner(path, threads=1))
    tick = clock.spy(path.name, ms)
    return dataclasses.replace(candidate, predict=lambda feed: tick())


def test_int8_slower_than_its_fp32_names_the_float_islands(clock, fp32_file):
    floats = {"0": "float weights (the layer was not quantized)"}
    int8 = labelled_int8(
        fp32_file,
        "net_int8.onnx",
        {INT8_LAYERS_KEY: "mixed: 1 of 2 layers int8", FLOAT_LAYERS_KEY: json.dumps(floats)},
    )
    entries = [timed(clock, fp32_file, 2.0), timed(clock, int8, 4.0)]
    report = bench(entries, [1], threads=1, rounds=3, repeats=2, warmup=0, clock=clock)
    fp32_row, int8_row = report.rows
    assert fp32_row.int8_slower is None
    assert int8_row.ratio_vs_first == pytest.approx(0.5) and int8_row.speedup_p90 == pytest.approx(0.5)
    assert "int8 slower than fp32 net.onnx: 0.50x" in int8_row.int8_slower
    assert "float islands: 1 layers float (mixed: 1 of 2 layers int8: 0)" in int8_row.int8_slower
    assert report.flagged == [f"net_int8.onnx @ batch 1: {int8_row.int8_slower}"]
    assert "float islands" in report.markdown() and report.to_dict()["rows"][1]["int8_slower"]


def test_float_norms_alone_are_float_islands_too():
    norms = json.dumps({"block.bn1": "BatchNorm not folded into a conv", "block.bn2": "..."})
    metadata = {INT8_LAYERS_KEY: "int8: all 4 layers; 2 norms float", FLOAT_NORMS_KEY: norms}
    assert slow_int8_cause(metadata, None) == (
        "float islands: 0 layers and 2 norms float (int8: all 4 layers; 2 norms float: block.bn1, block.bn2)"
    )


def test_float_ops_are_float_islands_too():
    ops = json.dumps({"features.act": "onnxruntime has no integer HardSigmoid / Mul kernel here"})
    metadata = {INT8_LAYERS_KEY: "int8: all 4 layers; 1 op float", FLOAT_OPS_KEY: ops}
    assert slow_int8_cause(metadata, None) == (
        "float islands: 0 layers and 1 ops float (int8: all 4 layers; 1 op float: features.act)"
    )


def test_all_int8_but_narrow_layers_and_a_faster_int8(clock, fp32_file):
    int8 = labelled_int8(fp32_file, "q8.onnx", {INT8_LAYERS_KEY: "int8: all 2 layers"})
    baseline = timed(clock, fp32_file, 1.0)
    slow = bench([baseline, timed(clock, int8, 3.0)], [1], threads=1, rounds=2, warmup=0, clock=clock)
    assert "narrow layers: median 8 output channels (< 16)" in slow.rows[1].int8_slower  # same inputs
    fast = bench([baseline, timed(clock, int8, 0.5)], [1], threads=1, rounds=2, warmup=0, clock=clock)
    assert fast.rows[1].int8_slower is None and fast.rows[1].ratio_vs_first == pytest.approx(2.0)


def test_wide_layers_uint8_weights_or_unknown(clock, tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3)).eval()
    wide = export_onnx(model, tmp_path / "wide.onnx", torch.randn(1, 1, 8, 8))
    causes = []
    for name, extra in (("wide_int8.onnx", {WEIGHT_DTYPE_KEY: "uint8"}), ("wide_q8.onnx", {})):
        int8 = labelled_int8(wide, name, {INT8_LAYERS_KEY: "int8: all 2 layers", **extra})
        entries = [timed(clock, wide, 1.0), timed(clock, int8, 2.0)]
        causes.append(bench(entries, [1], threads=1, rounds=2, warmup=0, clock=clock).rows[1].int8_slower)
    assert "likely cause: uint8 weights: onnxruntime's exact U8U8 kernels" in causes[0]
    assert causes[1].endswith("likely cause: unknown (int8: all 2 layers, layers not narrow)")


def test_noisy_rows_are_flagged(clock, fp32_file):
    steady = timed(clock, fp32_file, 2.0)
    jumpy = timed(clock, fp32_file.with_name("net.onnx"), itertools.cycle([1.0, 3.0]))
    report = bench([steady, jumpy], [1], threads=1, rounds=6, repeats=1, warmup=0, clock=clock)
    assert report.rows[1].noisy and report.noisy and report.rows[1].flags == ["noisy"]
    assert report.rows[1].speedup_p10 < 1.0 < report.rows[1].speedup_p90


def test_bench_falls_back_to_one_thread_when_oversubscribed(clock, fp32_file, machine):
    machine(load=6.0, cores=2)
    with pytest.warns(RuntimeWarning, match="oversubscribed"):
        report = bench([fp32_file], [1], threads=2, rounds=1, repeats=1, warmup=0)
    assert (report.threads_used, report.threads_requested, report.oversubscribed) == (1, 2, True)
    assert "1 thread for every runtime" in report.thread_reason and report.load_average == 6.0
    assert report.rows[0].noisy  # load above the cores


def test_model_key_drops_precision_tokens():
    assert model_key("runs/net_int8.onnx") == model_key("net-fp32.onnx") == model_key("net.onnx") == "net"
    assert model_key("q8.onnx") == "" and model_key("quantile.onnx") == "quantile"
