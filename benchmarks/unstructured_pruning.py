"""Unstructured magnitude pruning on the Fashion-MNIST demo model (small_cnn), seed 002 Table 1/2 style.

    python benchmarks/unstructured_pruning.py [--quick] [--checkpoint small_cnn.pt] [--data-dir DIR]

Global and layer scope, prune ratios 0, 0.1, ..., 0.9, post-training and after one capped epoch of
pruning-aware fine-tuning (masks held). Prints one markdown table: top-1 on the test subset, nonzero
parameters, the compressed container's bytes, the eager latency at batch 64 (median and p10-p90, timed
interleaved with the dense model) under the label "no speed gain: dense kernels", then from where on
accuracy stays > 1 point below baseline.
Without --checkpoint the shipped baseline is used if installed, else a baseline is trained on a subset.
The glibc malloc settings of DESIGN.md are set (by re-running this script) so the dense baseline is fair.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from prunequant.data import load_dataset, make_loaders
from prunequant.errors import PrunequantError
from prunequant.models import build, load_checkpoint, save_checkpoint
from prunequant.pruning.unstructured import sweep_unstructured
from prunequant.seeding import seed_everything
from prunequant.sweep_output import markdown_table
from prunequant.training import TrainConfig, Trainer, evaluate

AMOUNTS = [round(0.1 * step, 1) for step in range(10)]
MALLOC = {"MALLOC_MMAP_THRESHOLD_": "67108864", "MALLOC_TRIM_THRESHOLD_": "268435456"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller subsets, fewer fine-tune batches and rounds"
    )
    parser.add_argument(
        "--checkpoint", help="a trained small_cnn Fashion-MNIST checkpoint (else shipped/trained)"
    )
    parser.add_argument("--data-dir", help="Fashion-MNIST folder (default: the standard locations)")
    parser.add_argument("--lr", type=float, default=0.01, help="fine-tune learning rate (default 0.01)")
    args = parser.parse_args()
    ensure_malloc_settings()
    seed_everything(0)
    torch.set_num_threads(1)  # on the shared 2-core box two threads ran 2-10x slower and far noisier
    limit, finetune_batches, rounds = (4000, 10, 7) if args.quick else (12000, 40, 15)
    splits = load_dataset("fashion-mnist", args.data_dir, limit=limit, seed=0, val_fraction=0.05)
    loaders = make_loaders(splits, 64, seed=0, eval_batch_size=256)
    start = time.perf_counter()
    model = baseline(args.checkpoint, splits, loaders)
    dense_file = checkpoint_bytes(model)
    log(f"baseline top-1 {100 * evaluate(model, loaders.test).top1:.2f}% on {len(splits.test)} test images")
    rows = sweep_unstructured(
        model,
        loaders.test,
        AMOUNTS,
        scopes=("global", "layer"),
        train_loader=loaders.train,
        val_loader=loaders.val,
        finetune=TrainConfig(epochs=1, lr=args.lr, max_batches_per_epoch=finetune_batches),
        example_input=next(iter(loaders.test))[0][:64],
        latency_rounds=rounds,
        on_row=lambda r: log(
            f"{r['scope']:>6} {r['mode']:<5} {r['amount']:.1f} top-1 {100 * r['top1']:.2f}%"
        ),
    )
    print(
        f"\n### small_cnn / Fashion-MNIST: magnitude pruning (aware = {finetune_batches} batches of 64 at LR "
        f"{args.lr}, masks held; latency: batch 64, 1 thread, {rounds} interleaved rounds)\n"
    )
    print(markdown_table([table_row(row) for row in rows]))
    print(f"\nPlain checkpoint (save_checkpoint, dense fp32): {dense_file:,} bytes.")
    print(
        f"Baseline top-1 {100 * rows[0]['baseline_top1']:.2f}%. From where on is accuracy > 1 point below it:"
    )
    for line in falloff_lines(rows):
        print(f"- {line}")
    seconds = time.perf_counter() - start
    print(f"\n(total {seconds:.0f} s; {len(splits.train)} train / {len(splits.test)} test images)")


def ensure_malloc_settings() -> None:
    """Re-run this script with DESIGN.md's malloc settings unless they are already in the environment."""
    if all(os.environ.get(key) for key in MALLOC):
        return
    log("re-running with MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ set (fair eager baseline)")
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **MALLOC})


def baseline(checkpoint: str | None, splits, loaders) -> torch.nn.Module:
    try:
        from prunequant.builtin import resolve_checkpoint

        path = resolve_checkpoint(checkpoint or "builtin:fashion-mnist")
        return load_checkpoint(path)[0]
    except PrunequantError as err:
        if checkpoint:
            raise
        log(f"no shipped baseline ({err}); training one for 3 epochs on the subset")
    channels, size, _ = splits.input_shape
    model = build("small_cnn", num_classes=splits.num_classes, in_channels=channels, input_size=size)
    Trainer(model, loaders.train, loaders.val, TrainConfig(epochs=3, lr=0.05, lr_schedule="cosine")).fit()
    return model.eval()


def checkpoint_bytes(model: torch.nn.Module) -> int:
    with tempfile.TemporaryDirectory() as folder:
        return save_checkpoint(model, Path(folder) / "dense.pt").stat().st_size


def table_row(row: dict) -> dict:
    return {
        "scope": row["scope"],
        "mode": row["mode"],
        "amount": f"{row['amount']:.1f}",
        "top1 %": f"{100 * row['top1']:.2f}",
        "nonzero params": f"{row['nonzero_params']:,}",
        "compressed bytes": f"{row['compressed_bytes']:,}",
        "latency ms (p10-p90)": f"{row['latency_ms']:.2f} "
        f"({row['latency_p10_ms']:.2f}-{row['latency_p90_ms']:.2f})",
        "speed": row["speed"],
    }


def falloff_lines(rows: list[dict]) -> list[str]:
    """Per scope and mode, the smallest amount from which every larger one is > 1 point below baseline."""
    lines = []
    for scope, mode in dict.fromkeys((row["scope"], row["mode"]) for row in rows):
        series = sorted((row for row in rows if (row["scope"], row["mode"]) == (scope, mode)), key=_amount)
        within = [row for row in series if row["baseline_top1"] - row["top1"] <= 0.01]
        after = [row for row in series if not within or row["amount"] > within[-1]["amount"]]
        where = f"from amount {after[0]['amount']:.1f} ({100 * after[0]['top1']:.2f}%)" if after else "never"
        lines.append(f"{scope} / {mode}: {where}")
    return lines


def _amount(row: dict) -> float:
    return row["amount"]


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
