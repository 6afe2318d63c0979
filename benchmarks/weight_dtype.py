"""int8 ONNX weight storage: S8 (zero point 0) against U8 (codes + 128) on this CPU.

ResNet-20 (CIFAR, random init, BN statistics from one random batch), PTQ 8/8 with `quantize_residuals`,
exported twice by `export_int8`. For each file it prints the agreement of onnxruntime's top-1 with the
fake-quant model's and the max logit difference on 256 random inputs, and the latency at 1 thread
(batch 32, interleaved rounds, median and spread); plus what `weight_dtype="auto"` picks here and why.

    python benchmarks/weight_dtype.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from prunequant.export.onnx_int8 import export_int8
from prunequant.export.weight_dtype import choose_weight_dtype
from prunequant.models import build
from prunequant.quantization import QuantConfig, quantize


def settled_resnet20() -> nn.Module:
    torch.manual_seed(0)
    model = build("resnet20", num_classes=10, in_channels=3, input_size=32)
    for norm in model.modules():
        if isinstance(norm, nn.BatchNorm2d):
            norm.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn(64, 3, 32, 32))
    return model.eval()


def session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run(runner: ort.InferenceSession, inputs: torch.Tensor) -> np.ndarray:
    name = runner.get_inputs()[0].name
    return np.concatenate([runner.run(None, {name: chunk.numpy()})[0] for chunk in inputs.split(32)])


def interleaved(
    runners: list[ort.InferenceSession], x: np.ndarray, rounds: int, runs: int
) -> list[list[float]]:
    feeds = [{r.get_inputs()[0].name: x} for r in runners]
    samples: list[list[float]] = [[] for _ in runners]
    for runner, feed in zip(runners, feeds, strict=True):
        runner.run(None, feed)
    for _ in range(rounds):
        for index, (runner, feed) in enumerate(zip(runners, feeds, strict=True)):
            start = time.perf_counter()
            for _ in range(runs):
                runner.run(None, feed)
            samples[index].append((time.perf_counter() - start) * 1e3 / runs)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timing rounds")
    args = parser.parse_args()
    rounds, runs = (5, 5) if args.quick else (15, 10)
    torch.set_num_threads(1)
    model = settled_resnet20()
    calib = [(torch.randn(32, 3, 32, 32), torch.zeros(32)) for _ in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qmodel = quantize(model, QuantConfig(), calib, calib_batches=4).eval()
    inputs = torch.randn(256, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    auto = choose_weight_dtype("auto")
    print(f"weight_dtype='auto' here: {auto.dtype} ({auto.reason})")
    with torch.no_grad():
        reference = qmodel(inputs).numpy()
    with tempfile.TemporaryDirectory(prefix="weight-dtype-") as scratch:
        runners, outputs = [], []
        for dtype in ("uint8", "int8"):
            path = export_int8(qmodel, Path(scratch) / f"{dtype}.onnx", inputs[:1], weight_dtype=dtype).output
            runners.append(session(path))
            outputs.append(run(runners[-1], inputs))
            agreement = float((reference.argmax(1) == outputs[-1].argmax(1)).mean())
            max_diff = float(np.abs(reference - outputs[-1]).max())
            print(f"{dtype:>5}: agreement with fake-quant {agreement:.4f}, max |logit diff| {max_diff:.3g}")
        print(f"S8 against U8 outputs: max |diff| {float(np.abs(outputs[0] - outputs[1]).max()):.3g}")
        samples = interleaved(runners, inputs[:32].numpy(), rounds, runs)
    medians = [statistics.median(s) for s in samples]
    print(f"latency, batch 32, 1 thread, {rounds} interleaved rounds x {runs} runs (median, min-max):")
    for dtype, median, sample in zip(("uint8", "int8"), medians, samples, strict=True):
        print(f"  {dtype:>5}: {median:7.2f} ms  ({min(sample):.2f}-{max(sample):.2f})")
    print(f"  S8 / U8 speedup: {medians[0] / medians[1]:.2f}x; load average {_load()}")


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
