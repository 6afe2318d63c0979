"""Structured pruning: does a channel cut make the model faster, and what does each criterion cost?

Part 1 (speed): resnet20, resnet56 and mobilenetv2 (3x32x32, random init) pruned by 30/50/70% of each
group's channels (l1, round_to=8). Params, MACs, and latency in torch eager and onnxruntime fp32 (2 threads)
at batch 1 and 64: medians over interleaved rounds (A B C ... A B C ...) in this one process; speedup is
against the unpruned model, "efficiency" = speedup / MACs reduction. A hand-written half-width ResNet-56
(8/16/32 channels) is timed beside the pruner's 50% cut as the reference.

Part 2 (accuracy): small_cnn trained briefly on Fashion-MNIST (or --checkpoint), pruned 50% by l1, bn_gamma,
activation_l1 and apoz; test top-1 right after, after BN recalibration (20 batches), after a short fine-tune.

    python benchmarks/structured_pruning.py [--quick] [--checkpoint small_cnn.pt] [--part speed|accuracy]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import warnings

MALLOC = {"MALLOC_MMAP_THRESHOLD_": "67108864", "MALLOC_TRIM_THRESHOLD_": "268435456"}
if any(os.environ.get(key) != value for key, value in MALLOC.items()) and not os.environ.get("PQ_NO_REEXEC"):
    os.environ.update(MALLOC, PQ_NO_REEXEC="1")  # fair eager timing (see DESIGN.md); re-exec once with them
    os.execv(sys.executable, [sys.executable, *sys.argv])

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from prunequant.data import load_dataset, make_loaders  # noqa: E402
from prunequant.models import build, load_checkpoint  # noqa: E402
from prunequant.models.resnet_cifar import BasicBlock  # noqa: E402
from prunequant.profiling import profile  # noqa: E402
from prunequant.pruning.structured import prune_channels, recalibrate_bn  # noqa: E402
from prunequant.seeding import seed_everything  # noqa: E402
from prunequant.training import TrainConfig, Trainer, evaluate, finetune_then_refine  # noqa: E402

AMOUNTS = (0.3, 0.5, 0.7)
CRITERIA = ("l1", "bn_gamma", "activation_l1", "apoz")


class HalfResNet56(nn.Module):
    """Hand-written reference: ResNet-56 at 8/16/32 channels, what a 50% channel cut should produce."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu = nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU()
        stages, channels = [], 8
        for width, stride in ((8, 1), (16, 2), (32, 2)):
            blocks = [BasicBlock(channels, width, stride)] + [BasicBlock(width, width) for _ in range(8)]
            stages.append(nn.Sequential(*blocks))
            channels = width
        self.layers = nn.Sequential(*stages)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def onnx_session(model: nn.Module, shape: tuple[int, ...]) -> ort.InferenceSession:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), torch.randn(1, *shape), buffer, dynamo=False, opset_version=17, input_names=["x"],
            output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        )  # fmt: skip
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])


def interleaved(fns: dict[str, object], rounds: int, warmup: int = 2) -> dict[str, tuple[float, float]]:
    """(median, min) ms per call of each fn, timed in rounds A B C ... A B C ..."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: (statistics.median(values), min(values)) for name, values in samples.items()}


def _cell(timings: dict[str, tuple[float, float]], name: str, index: int) -> str:
    """'ms (speedup x)' of variant `name` from its (median, min) pair at `index`, against the unpruned one."""
    ms = timings[name][index]
    return f"{ms:.2f} ({timings['0%'][index] / ms:.2f}x)"


def speed(quick: bool) -> tuple[list[str], list[str]]:
    """The main table (medians) and a best-of-rounds table (minimums: robust when the CPU is shared)."""
    torch.set_num_threads(2)
    shape = (3, 32, 32)
    rows = [
        "| model | channels cut | params | MACs | MACs red. | eager b1 ms (x) | eager b64 ms (x) "
        "| ort b1 ms (x) | ort b64 ms (x) | eff. eager b64 | eff. ort b64 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    best = [
        "| model | channels cut | MACs red. | eager b1 (x) | eager b64 (x) | ort b1 (x) | ort b64 (x) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for arch in ("resnet20", "resnet56", "mobilenetv2"):
        torch.manual_seed(0)
        base = build(arch).eval()
        example = torch.randn(2, *shape)
        variants = {"0%": base}
        for amount in AMOUNTS:
            variants[f"{amount:.0%}"] = prune_channels(base, example, amount, round_to=8).eval()
        if arch == "resnet56":
            variants["50% hand-written"] = HalfResNet56().eval()
        stats = {name: profile(model, example[:1], latency=False).total for name, model in variants.items()}
        times: dict[tuple[str, int], dict[str, float]] = {}
        for batch in (1, 64):
            x = torch.randn(batch, *shape)
            rounds = (30 if batch == 1 else 7) if quick else (60 if batch == 1 else 15)

            def eager(model: nn.Module, x: torch.Tensor = x):
                def call():
                    with torch.inference_mode():
                        model(x)

                return call

            times[("eager", batch)] = interleaved({n: eager(m) for n, m in variants.items()}, rounds)
            sessions = {n: onnx_session(m, shape) for n, m in variants.items()}
            feed = {"x": x.numpy().astype(np.float32)}
            times[("ort", batch)] = interleaved(
                {n: (lambda s=s, feed=feed: s.run(None, feed)) for n, s in sessions.items()}, rounds
            )
        for name in variants:
            reduction = stats["0%"]["macs"] / stats[name]["macs"]
            keys = (("eager", 1), ("eager", 64), ("ort", 1), ("ort", 64))
            cells = [_cell(times[key], name, 0) for key in keys]
            fastest = [_cell(times[key], name, 1) for key in keys]
            eff = [times[(rt, 64)]["0%"][0] / times[(rt, 64)][name][0] / reduction for rt in ("eager", "ort")]
            best.append(f"| {arch} | {name} | {reduction:.2f}x | " + " | ".join(fastest) + " |")
            rows.append(
                f"| {arch} | {name} | {stats[name]['params']:,} | {stats[name]['macs'] / 1e6:.1f}M | "
                f"{reduction:.2f}x | " + " | ".join(cells) + f" | {eff[0]:.2f} | {eff[1]:.2f} |"
            )
        print(f"[speed] {arch} done", file=sys.stderr, flush=True)
    return rows, best


def accuracy(quick: bool, checkpoint: str | None, seed: int) -> list[str]:
    seed_everything(seed)
    limit = 6000 if quick else None
    splits = load_dataset("fashion-mnist", val_fraction=0.1, seed=seed, limit=limit)
    loaders = make_loaders(splits, 128, seed=seed)
    if checkpoint:
        model, _ = load_checkpoint(checkpoint)
    else:
        channels, _, size = splits.input_shape
        model = build("small_cnn", num_classes=splits.num_classes, in_channels=channels, input_size=size)
        Trainer(model, loaders.train, loaders.val, TrainConfig(epochs=2 if quick else 8, lr=0.05)).fit()
    source = checkpoint or ("trained here: 6k images, 2 epochs" if quick else "trained here: 8 epochs")
    base = evaluate(model, loaders.test).top1
    example = next(iter(loaders.train))[0][:2]
    rows = [
        f"Baseline small_cnn test top-1: {100 * base:.2f}% ({source}); fine-tuning on "
        f"{len(splits.train)} training images",
        "",
        "| importance (50% channels) | params | top-1 after prune | + BN recalibration | + fine-tune |",
        "|---|---:|---:|---:|---:|",
    ]
    finetune = TrainConfig(epochs=1 if quick else 3, lr=0.01)
    for criterion in CRITERIA:
        seed_everything(seed)
        pruned = prune_channels(
            model, example, 0.5, importance=criterion, calib_loader=loaders.train, seed=seed
        )
        after_prune = evaluate(pruned, loaders.test).top1
        recalibrated = evaluate(recalibrate_bn(pruned, loaders.train, max_batches=20), loaders.test).top1
        finetune_then_refine(pruned, loaders.train, loaders.val, finetune, refine_epochs=1 if quick else 2)
        params = sum(p.numel() for p in pruned.parameters())
        after = evaluate(pruned, loaders.test).top1
        figures = " | ".join(f"{100 * value:.2f}" for value in (after_prune, recalibrated, after))
        rows.append(f"| {criterion} | {params:,} | {figures} |")
        print(f"[accuracy] {criterion} done", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer timing rounds, short training (~10 min)")
    parser.add_argument("--checkpoint", help="a trained small_cnn Fashion-MNIST checkpoint (skips training)")
    parser.add_argument("--part", choices=("all", "speed", "accuracy"), default="all", help="what to run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    fair = all(os.environ.get(k) == v for k, v in MALLOC.items())
    malloc = "set" if fair else "UNSET (eager timings unfair)"
    print(f"# Structured pruning benchmark (torch {torch.__version__}, onnxruntime {ort.__version__}, "
          f"2 threads, MALLOC_* {malloc})\n")  # fmt: skip
    if args.part != "accuracy":
        rows, best = speed(args.quick)
        print("\n".join(rows))
        print("\nBest of rounds (minimum ms, speedup vs the unpruned minimum):\n")
        print("\n".join(best))
    if args.part != "speed":
        print()
        print("\n".join(accuracy(args.quick, args.checkpoint, args.seed)))


if __name__ == "__main__":
    main()
