"""Forms with no possible speed gain are labelled in the sweeps, never shown as a speedup."""

from __future__ import annotations

import torch

from prunequant.pruning.unstructured.sweep import sweep_unstructured
from prunequant.quantization import QuantConfig, sweep_quantization
from prunequant.timing import BASELINE_SPEED, FAKE_QUANT_SPEED, FLOAT_CAST_SPEED, NO_SPEED_GAIN_DENSE


def test_unstructured_sweep_labels_masked_zeros(tiny_model, blob_loaders, idle):
    val = blob_loaders[1]
    untimed = sweep_unstructured(tiny_model, val, [0.5], scopes=("global",))
    assert untimed[0]["speed"] == NO_SPEED_GAIN_DENSE == "no speed gain: dense kernels"
    assert untimed[0]["latency_ms"] is None and "latency_ratio" not in untimed[0]
    timed = sweep_unstructured(
        tiny_model, val, [0.5], scopes=("global",), example_input=torch.randn(2, 1, 8, 8), latency_rounds=2
    )
    row = timed[0]
    assert (
        row["speed"] == NO_SPEED_GAIN_DENSE
        and row["latency_p10_ms"] <= row["latency_ms"] <= row["latency_p90_ms"]
    )


def test_quantization_sweep_labels_fake_quant(tiny_model, blob_loaders):
    train, val = blob_loaders
    rows = sweep_quantization(
        tiny_model, train, val, [8, "fp16"], config=QuantConfig(a_bits=None), modes=("post",), calib_batches=1
    )
    assert [(row["bits"], row["speed"]) for row in rows] == [
        ("fp32", BASELINE_SPEED),
        ("8", FAKE_QUANT_SPEED),
        ("fp16", FLOAT_CAST_SPEED),
    ]
    assert FAKE_QUANT_SPEED == "fake-quant: not a deployable speed"
