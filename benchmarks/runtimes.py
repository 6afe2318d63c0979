"""Runtimes side by side: torch eager fp32, onnxruntime fp32 / int8 and PT2E int8 + inductor, at 1 thread.

For ResNet-20, ResNet-56 and MobileNetV2 (CIFAR, 3x32x32, random weights with BatchNorm statistics of one
random batch) at 0%, 50% and 75% of channels removed (`prune_channels`, L1, uniform), at batch 1 and 64:
- torch eager fp32 of the pruned model, onnxruntime fp32 and onnxruntime int8 (static QDQ: U8 activations,
  S8 per-channel weights, calibrated by onnxruntime on 8 random batches): each timed in this process,
  interleaved against the original model in torch eager (prunequant.timing.compare's rotating
  rounds);
- PT2E int8 (X86InductorQuantizer, same calibration batches, `torch.compile` with freezing): compiled and
  timed in its own process, interleaved there against the same original model in torch eager.

Speedups are baseline / candidate per round: median [p10-p90]. `int8 kernels` is how many conv / linear
layers inductor lowered to int8 kernels, of those PT2E quantized. Random weights: the figures are speed
only; accuracy is not measured here. The process restarts itself with tuned glibc malloc (DESIGN.md).

    python benchmarks/runtimes.py            # the full grid: 9 models x 2 batches, 18 compilations
    python benchmarks/runtimes.py --quick    # ResNet-20 at 0% and 50%, 3 rounds (7 min under load)
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from prunequant.export import export_onnx
from prunequant.export.bench import malloc_tuned, restart_with_tuned_malloc
from prunequant.export.onnx_int8 import export_int8
from prunequant.export.ort_quantizer import OrtQuantConfig
from prunequant.export.pt2e_child import interleaved_speedup
from prunequant.export.pt2e_int8 import RUNTIME, export_pt2e_int8
from prunequant.export.pt2e_runner import run_pt2e
from prunequant.export.runtime import OnnxRunner
from prunequant.models import build
from prunequant.pruning.structured import prune_channels

SHAPE = (3, 32, 32)
CALIB_BATCHES = 8
COLUMNS = ("model", "cut", "runtime", "batch", "median ms", "eager ms", "speedup [p10-p90]", "int8 kernels")


def random_model(arch: str) -> nn.Module:
    """The zoo model with random weights and the BatchNorm statistics of one random batch."""
    torch.manual_seed(0)
    model = build(arch, num_classes=10)
    for norm in model.modules():
        if isinstance(norm, nn.BatchNorm2d):
            norm.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn(32, *SHAPE))
    return model.eval()


def cut(model: nn.Module, amount: float) -> nn.Module:
    if not amount:
        return copy.deepcopy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prune_channels(model, torch.randn(1, *SHAPE), amount)


def in_process_rows(baseline: nn.Module, pruned: nn.Module, folder: Path, args: argparse.Namespace) -> list:
    """(runtime, batch, figures) for torch eager, onnxruntime fp32 and int8 of `pruned`."""
    example = torch.randn(1, *SHAPE)
    calib = [torch.randn(32, *SHAPE) for _ in range(CALIB_BATCHES)]
    fp32 = OnnxRunner(export_onnx(pruned, folder / "fp32.onnx", example), 1)
    config = OrtQuantConfig(calib_batches=CALIB_BATCHES)
    int8_path = export_int8(
        pruned, folder / "int8.onnx", example, "ort", calib_loader=calib, ort_config=config
    )
    int8 = OnnxRunner(int8_path.output, 1)

    def eager(model: nn.Module):
        def run(data: torch.Tensor) -> object:
            with torch.inference_mode():
                return model(data)

        return run

    def onnx(runner: OnnxRunner):
        return lambda feed: runner.run_numpy(feed)

    rows = []
    for batch in args.batches:
        data = torch.randn(batch, *SHAPE, generator=torch.Generator().manual_seed(batch))
        base = eager(baseline)
        for runtime, candidate, inputs in (
            ("torch eager fp32", eager(pruned), data),
            ("onnxruntime fp32", onnx(fp32), fp32.feed(data)),
            ("onnxruntime int8", onnx(int8), int8.feed(data)),
        ):
            figures = interleaved_speedup(
                lambda x, c=candidate, i=inputs: c(i),
                base,
                data,
                rounds=args.rounds,
                repeats=args.repeats,
                warmup=2,
            )
            rows.append((runtime, batch, figures, ""))
    return rows


def pt2e_rows(baseline: nn.Module, pruned: nn.Module, folder: Path, args: argparse.Namespace) -> list:
    example = torch.randn(1, *SHAPE)
    calib = [torch.randn(32, *SHAPE) for _ in range(CALIB_BATCHES)]
    result = export_pt2e_int8(pruned, folder / "model.pt2", example, calib, calib_batches=CALIB_BATCHES)
    run = run_pt2e(
        result.output, baseline, example, batches=args.batches, rounds=args.rounds, repeats=args.repeats
    )
    for note in run.notes:
        print(f"  note: {note}", file=sys.stderr)
    layers = len(result.int8_layers)
    return [(RUNTIME, t.batch, vars(t), f"{t.int8_kernels}/{layers}") for t in run.timings]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="ResNet-20 at 0%% and 50%%, 3 rounds")
    args = parser.parse_args()
    restart_with_tuned_malloc([__file__, *sys.argv[1:]])
    torch.set_num_threads(1)
    archs = ("resnet20",) if args.quick else ("resnet20", "resnet56", "mobilenetv2")
    amounts = (0.0, 0.5) if args.quick else (0.0, 0.5, 0.75)
    args.batches, args.rounds, args.repeats = (1, 64), (3 if args.quick else 7), (3 if args.quick else 5)
    print(f"1 thread, {args.rounds} rounds x {args.repeats} calls, malloc tuned: {malloc_tuned()}")
    print(" | ".join(COLUMNS))
    for arch in archs:
        baseline = random_model(arch)
        for amount in amounts:
            pruned = cut(baseline, amount)
            with tempfile.TemporaryDirectory(prefix="pq-runtimes-") as scratch:
                rows = in_process_rows(baseline, pruned, Path(scratch), args)
                rows += pt2e_rows(baseline, pruned, Path(scratch), args)
            for runtime, batch, f, kernels in sorted(rows, key=lambda row: row[1]):
                spread = f"{f['speedup']:.2f}x [{f['speedup_p10']:.2f}-{f['speedup_p90']:.2f}]"
                cells = (arch, f"{amount:.0%}", runtime, str(batch), f"{f['candidate_ms']:.2f}")
                print(" | ".join((*cells, f"{f['baseline_ms']:.2f}", spread, kernels or "-")), flush=True)


if __name__ == "__main__":
    main()
