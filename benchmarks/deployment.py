"""Deployment benchmark (issue #6): onnxruntime fp32 / int8 vs torch eager, 50% channel pruning, and the
"best combined" Fashion-MNIST model (pruned + fine-tuned + int8), end to end through prunequant's API.

    python benchmarks/deployment.py [--quick] [--threads N] [--data-dir DIR]

Every table of timings comes from one `prunequant.export.bench` call: all variants of a model in this one
process, interleaved over rounds (A B C A B C ...), medians, speedups against the first row. The process
restarts itself with the glibc malloc settings of DESIGN.md so torch eager is measured fairly. Speed-only
models (resnet20/56, mobilenetv2 at CIFAR size) are random-initialised; their int8 variants calibrate on the
synthetic set. Prints markdown tables only.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import warnings
from pathlib import Path

import torch

from prunequant.data import load_dataset, make_loaders
from prunequant.export.bench import (
    BenchReport,
    bench,
    load_candidate,
    malloc_tuned,
    restart_with_tuned_malloc,
)
from prunequant.export.onnx_fp32 import export_onnx
from prunequant.export.onnx_int8 import export_int8
from prunequant.export.ort_quantizer import OrtQuantConfig
from prunequant.export.parity import parity
from prunequant.export.runtime import OnnxRunner
from prunequant.models import build, save_checkpoint
from prunequant.profiling import profile
from prunequant.pruning.structured import prune_channels
from prunequant.quantization import QuantConfig, quantize
from prunequant.seeding import seed_everything
from prunequant.training import TrainConfig, Trainer, evaluate, finetune_then_refine

CIFAR = (3, 32, 32)
ORT_VARIANTS = {
    "ort int8 U8S8 per-channel": OrtQuantConfig(weights="s8"),
    "ort int8 U8S8 per-tensor": OrtQuantConfig(weights="s8", per_channel=False),
    "ort int8 S8S8 per-channel": OrtQuantConfig(activations="s8", weights="s8"),
    "ort int8 U8U8 per-channel": OrtQuantConfig(),
}
TORCH, FP32, INT8 = "torch eager fp32", "onnxruntime fp32", "ort int8 U8S8 per-channel"
PRUNED, PRUNED_INT8, OURS = "pruned 50% onnxruntime fp32", "pruned 50% ort int8 U8S8", "ours int8 (PTQ 8/8)"


@dataclasses.dataclass(frozen=True)
class Settings:
    threads: int
    rounds: int
    repeats: int
    quick: bool
    data_dir: str | None


def variants_of(name: str, folder: Path, full_set: bool) -> tuple[list[tuple[str, Path]], float]:
    """(label, file) of every deployment variant of zoo model `name` at CIFAR size, and the MAC ratio
    original / 50%-pruned."""
    seed_everything(0)
    model = build(name, input_size=CIFAR[1]).eval()
    example = torch.randn(1, *CIFAR)
    calib = make_loaders(load_dataset("synthetic", seed=0, size=256), 32, seed=0).train
    files = [
        (TORCH, save_checkpoint(model, folder / f"{name}.pt")),
        (FP32, export_onnx(model, folder / f"{name}.onnx", example)),
    ]
    ort_variants = ORT_VARIANTS if full_set else {INT8: ORT_VARIANTS[INT8]}
    for label, config in ort_variants.items():
        path = folder / f"{name}.{label.replace(' ', '_')}.onnx"
        files.append(
            (
                label,
                Path(export_int8(model, path, example, "ort", calib_loader=calib, ort_config=config).output),
            )
        )
    qmodel = quantize(model, QuantConfig(), calib, calib_batches=4)
    files.append((OURS, Path(export_int8(qmodel, folder / f"{name}.ours.onnx", example).output)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruned = prune_channels(model, example, 0.5)
    files.append((PRUNED, export_onnx(pruned, folder / f"{name}.pruned.onnx", example)))
    files.append(
        (
            PRUNED_INT8,
            Path(
                export_int8(
                    pruned, folder / f"{name}.pruned.int8.onnx", example, "ort", calib_loader=calib
                ).output
            ),
        )
    )
    macs = [profile(m, example, latency=False).total["macs"] for m in (model, pruned)]
    return files, macs[0] / macs[1]


def kernels(files: list[tuple[str, Path]], labels: tuple[str, ...]) -> str:
    """What onnxruntime runs for the int8 variants: integer convs, float convs, layout transposes."""
    parts = []
    for label, path in files:
        if label in labels:
            ops = OnnxRunner(path, 1).optimized_ops()
            parts.append(
                f"{label}: {ops['QLinearConv']} QLinearConv, {ops['Conv'] + ops['FusedConv']} float Conv, "
                f"{ops['Transpose']} Transpose"
            )
    return "onnxruntime kernels after fusion -- " + "; ".join(parts)


def run_bench(files: list[tuple[str, Path]], settings: Settings) -> BenchReport:
    candidates = [
        dataclasses.replace(load_candidate(path, settings.threads), name=label) for label, path in files
    ]
    return bench(candidates, (1, 64), settings.threads, rounds=settings.rounds, repeats=settings.repeats)


def speedup(report: BenchReport, fast: str, slow: str, batch: int) -> float:
    """median(slow) / median(fast) at `batch`."""
    medians = {row.model: row.median_ms for row in report.rows if row.batch == batch}
    return medians[slow] / medians[fast]


def target_rows(model: str, report: BenchReport) -> list[tuple[str, str, float, float]]:
    """(model, comparison, measured, target) for the issue's speed targets."""
    checks = [
        (f"{FP32} vs {TORCH}, batch 64", FP32, TORCH, 64, 1.3),
        (f"{FP32} vs {TORCH}, batch 1", FP32, TORCH, 1, 4.0),
        (f"{INT8} vs {FP32}, batch 64", INT8, FP32, 64, 1.6),
        (f"{INT8} vs {FP32}, batch 1", INT8, FP32, 1, 1.4),
        (f"{OURS} vs {FP32}, batch 64", OURS, FP32, 64, 1.6),
        (f"{PRUNED} vs {TORCH}, batch 64", PRUNED, TORCH, 64, 3.5),
    ]
    return [
        (model, text, speedup(report, fast, slow, batch), goal) for text, fast, slow, batch, goal in checks
    ]


def combined(
    folder: Path, settings: Settings
) -> tuple[BenchReport, list[str], list[tuple[str, str, float, float]]]:
    """Fashion-MNIST small_cnn: baseline, 50% channels pruned + fine-tuned, then int8 with our PTQ scales."""
    seed_everything(0)
    splits = load_dataset(
        "fashion-mnist", settings.data_dir, seed=0, limit=12_000 if settings.quick else None
    )
    loaders = make_loaders(splits, 128, seed=0)
    example = torch.randn(1, *splits.input_shape)
    epochs = 3 if settings.quick else 10
    model = build("small_cnn", in_channels=splits.input_shape[0], input_size=splits.input_shape[1])
    Trainer(model, loaders.train, loaders.val, TrainConfig(epochs=epochs, lr=0.05)).fit()
    base = evaluate(model.eval(), loaders.test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruned = prune_channels(model, example, 0.5)
    finetune_then_refine(  # the seeds' recipe: the original LR and epochs, then LR/10
        pruned,
        loaders.train,
        loaders.val,
        TrainConfig(epochs=epochs, lr=0.05),
        refine_epochs=max(1, epochs // 3),
    )
    tuned = evaluate(pruned.eval(), loaders.test)
    qmodel = quantize(pruned, QuantConfig(), loaders.train, calib_batches=8)
    original = save_checkpoint(model, folder / "small_cnn.pt", dataset="fashion-mnist")
    export_onnx(model, folder / "small_cnn.onnx", example)
    best = Path(export_int8(qmodel, folder / "small_cnn.best.int8.onnx", example).output)
    deployed = evaluate(OnnxRunner(best, settings.threads), loaders.test)
    match = parity(qmodel, best, loaders.test, threads=settings.threads)
    report = run_bench(
        [(TORCH, original), (FP32, folder / "small_cnn.onnx"), ("best combined int8", best)], settings
    )
    size = original.stat().st_size / best.stat().st_size
    lines = [
        "| small_cnn on Fashion-MNIST | test top-1 |",
        "|---|---:|",
        f"| baseline (torch fp32, {epochs} epochs) | {100 * base.top1:.2f}% |",
        f"| 50% channels pruned + fine-tuned (torch fp32) | {100 * tuned.top1:.2f}% |",
        f"| + PTQ int8 8/8, fake-quant (torch) | {100 * match.top1_torch:.2f}% |",
        f"| + PTQ int8 8/8 on onnxruntime (ours QDQ) | {100 * deployed.top1:.2f}% |",
        f"| parity fake-quant vs onnxruntime: top-1 agreement | {100 * match.agreement:.2f}% |",
        f"| parity: max / mean abs logit diff | {match.max_abs_logit_diff:.4f} / "
        f"{match.mean_abs_logit_diff:.5f} |",
    ]
    targets = [
        (
            "small_cnn",
            "best combined vs torch fp32 original, batch 64",
            speedup(report, "best combined int8", TORCH, 64),
            4.0,
        ),
        ("small_cnn", "file size: original .pt / best combined .onnx", size, 8.0),
        (
            "small_cnn",
            "accuracy drop of best combined (points, lower is better)",
            100 * (base.top1 - deployed.top1),
            1.0,
        ),
    ]
    return report, lines, targets


def targets_table(rows: list[tuple[str, str, float, float]]) -> str:
    lines = ["| model | measured | value | target | met |", "|---|---|---:|---:|---|"]
    for model, text, value, goal in rows:
        lower_is_better = "lower is better" in text
        met = value <= goal if lower_is_better else value >= goal
        unit = "" if lower_is_better else "x"
        lines.append(
            f"| {model} | {text} | {value:.2f}{unit} | {'<=' if lower_is_better else '>='} "
            f"{goal:g}{unit} | {'yes' if met else 'NO'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs, rounds and calls (~8 min)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for everything")
    parser.add_argument("--data-dir", help="Fashion-MNIST folder (default: the usual locations)")
    args = parser.parse_args()
    restart_with_tuned_malloc([str(Path(__file__).resolve()), *sys.argv[1:]])
    torch.set_num_threads(args.threads)
    settings = Settings(
        args.threads, 3 if args.quick else 5, 3 if args.quick else 10, args.quick, args.data_dir
    )
    targets: list[tuple[str, str, float, float]] = []
    print(
        f"# Deployment benchmark ({settings.threads} threads, {settings.rounds} interleaved rounds x "
        f"{settings.repeats} calls, malloc tuned: {malloc_tuned()})\n"
    )
    with tempfile.TemporaryDirectory(prefix="pq-deploy-") as scratch:
        folder = Path(scratch)
        for name in ("resnet20", "resnet56", "mobilenetv2"):
            files, mac_ratio = variants_of(name, folder, full_set=name == "resnet20")
            report = run_bench(files, settings)
            print(f"## {name} at 3x32x32 (random init, speed only)\n\n{report.markdown()}\n")
            print(f"50% channel pruning leaves 1/{mac_ratio:.2f} of {name}'s MACs.\n")
            print(kernels(files, (INT8, OURS)) + "\n")
            targets += target_rows(name, report)
        report, accuracy, combined_targets = combined(folder, settings)
        print(f"## small_cnn on Fashion-MNIST: the best combined model\n\n{report.markdown()}\n")
        print("\n".join(accuracy) + "\n")
        if settings.quick:
            print(
                "(--quick: the baseline is under-trained, 3 epochs on 12k images, so fine-tuning the pruned "
                "model also trains it further; run without --quick for the fair comparison.)\n"
            )
        targets += combined_targets
    print(f"## Targets\n\n{targets_table(targets)}")


if __name__ == "__main__":
    main()
