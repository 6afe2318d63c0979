"""Uniform quantization on the Fashion-MNIST demo model (small_cnn): seed 000 Table II / Figs. 1-2 and
seed 003 Table 4 style figures.

    python benchmarks/quantization.py [--quick] [--checkpoint small_cnn.pt] [--data-dir DIR]

Prints three markdown tables:
1. zero share of the trained model's weights per bit width (per channel and per tensor) next to seed 000
   Table II, with the growth factor per 2 bits fewer;
2. the sweep: bits 16..4 (+fp16, bf16), post-training (PTQ) and aware (QAT: 1 epoch at LR, 1 refine epoch at
   LR/10, on a capped number of batches): top-1, zero share, weight / activation Mb, PD, packed file bytes;
3. the eager latency of the fake-quant W8A8 model relative to float, measured interleaved in this process
   (fake quantization simulates integers in float32, so it is slower: speed comes from the int8 export).
Without --checkpoint the shipped builtin:fashion-mnist model is used; when it is not installed, a baseline is
trained for 2 epochs on a subset first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from prunequant.builtin import resolve_checkpoint
from prunequant.data import load_dataset, make_loaders
from prunequant.errors import CheckpointError
from prunequant.export.storage.quantized_codec import save_quantized
from prunequant.models import build, load_checkpoint
from prunequant.quantization import QuantConfig, quantize, sweep_quantization, zero_share
from prunequant.seeding import seed_everything
from prunequant.sweep_output import markdown_table
from prunequant.training import TrainConfig, Trainer, evaluate

SEED_000_ZERO_SHARE = {16: 0.07, 14: 0.29, 12: 1.17, 10: 4.69, 8: 15.48, 6: 33.77}
WIDTHS = (16, 14, 12, 10, 8, 6, 4)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller subsets and fewer QAT batches")
    parser.add_argument(
        "--checkpoint", help="trained Fashion-MNIST checkpoint (default builtin:fashion-mnist, else train)"
    )
    parser.add_argument("--data-dir", help="Fashion-MNIST folder (default: the standard locations)")
    parser.add_argument("--lr", type=float, default=0.01, help="QAT learning rate (refine at LR/10)")
    args = parser.parse_args()
    seed_everything(0)
    torch.set_num_threads(2)
    limit, qat_batches, train_batches = (6000, 8, 20) if args.quick else (20000, 60, 0)
    splits = load_dataset("fashion-mnist", args.data_dir, limit=limit, seed=0)
    loaders = make_loaders(splits, 128, seed=0, eval_batch_size=256)
    start = time.perf_counter()
    model = baseline(args.checkpoint, splits, loaders, train_batches)
    log(f"baseline top-1 {100 * evaluate(model, loaders.test).top1:.2f}% on {len(splits.test)} test images")

    print("\n### Zero share of the trained weights (weights only; seed 000 Table II)\n")
    print(markdown_table(zero_share_rows(model)))

    with tempfile.TemporaryDirectory() as packed_dir:
        rows = sweep_quantization(
            model,
            loaders.train,
            loaders.test,
            [*WIDTHS, "fp16", "bf16"],
            config=QuantConfig(),
            train_config=TrainConfig(epochs=1, lr=args.lr, max_batches_per_epoch=qat_batches),
            refine_epochs=1,
            calib_batches=8,
            val_loader=loaders.val,
            pack=lambda qmodel, label: save_quantized(qmodel, Path(packed_dir) / f"{label}.pqz"),
            on_row=lambda row: log(f"{row['bits']:>5} {row['mode']:<8} top-1 {100 * row['top1']:.2f}%"),
        )
    print(f"\n### Sweep: W=A bits; post = PTQ (8 calib batches), aware = QAT ({qat_batches} batches x 2)\n")
    print(markdown_table([sweep_row(row) for row in rows]))

    print("\n### Eager latency of fake quantization (batch 64, interleaved medians)\n")
    print(markdown_table(latency_rows(model, loaders)))
    seconds = time.perf_counter() - start
    print(f"\n(total {seconds:.0f} s; {len(splits.train)} train / {len(splits.test)} test images)")


def baseline(checkpoint: str | None, splits, loaders, max_batches: int) -> torch.nn.Module:
    """The given checkpoint, else the shipped Fashion-MNIST demo model, else one trained here for 2 epochs."""
    try:
        return load_checkpoint(resolve_checkpoint(checkpoint or "builtin:fashion-mnist"))[0]
    except CheckpointError:
        if checkpoint:
            raise
        log("no builtin:fashion-mnist checkpoint installed; training a quick baseline")
    channels, size, _ = splits.input_shape
    model = build("small_cnn", num_classes=splits.num_classes, in_channels=channels, input_size=size)
    config = TrainConfig(epochs=2, lr=0.05, lr_schedule="cosine", max_batches_per_epoch=max_batches)
    Trainer(model, loaders.train, loaders.val, config).fit()
    return model.eval()


def zero_share_rows(model: torch.nn.Module) -> list[dict]:
    rows, previous = [], None
    for bits in WIDTHS:
        channel = 100 * zero_share(model, bits).share
        tensor = 100 * zero_share(model, bits, per_channel=False).share
        rows.append(
            {
                "bits": bits,
                "per-channel %": f"{channel:.3f}",
                "x per 2 bits": f"{channel / previous:.2f}" if previous else "-",
                "per-tensor %": f"{tensor:.3f}",
                "seed 000 %": SEED_000_ZERO_SHARE.get(bits, "-"),
            }
        )
        previous = channel
    return rows


def sweep_row(row: dict) -> dict:
    return {
        "bits": row["bits"],
        "mode": row["mode"],
        "top1 %": f"{100 * row['top1']:.2f}",
        "zero share %": f"{100 * row['zero_share']:.3f}",
        "weight Mb": f"{row['weight_mb']:.3f}",
        "activation Mb": f"{row['activation_mb']:.4f}",
        "PD (%/Mb)": f"{row['pd']:.1f}",
        "packed bytes": row["packed_bytes"],
    }


def latency_rows(model: torch.nn.Module, loaders, rounds: int = 15) -> list[dict]:
    variants = {
        "float32": model,
        "W8A8 fake-quant": quantize(model, QuantConfig(), loaders.train, calib_batches=4),
        "W4A4 fake-quant": quantize(model, QuantConfig(w_bits=4, a_bits=4), loaders.train, calib_batches=4),
    }
    x = next(iter(loaders.test))[0][:64]
    times: dict[str, list[float]] = {name: [] for name in variants}
    with torch.inference_mode():
        for variant in variants.values():
            variant.eval()(x)
        for _ in range(rounds):
            for name, variant in variants.items():
                begin = time.perf_counter()
                variant(x)
                times[name].append(1e3 * (time.perf_counter() - begin))
    medians = {name: statistics.median(samples) for name, samples in times.items()}
    return [
        {"variant": name, "median ms": f"{ms:.1f}", "ratio to float": f"{ms / medians['float32']:.2f}"}
        for name, ms in medians.items()
    ]


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
