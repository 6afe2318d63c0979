"""Distillation ablation: does knowledge distillation from the original recover more accuracy after a
heavy channel cut than plain fine-tuning, for the same fine-tune budget?

The zoo's ResNet-20 (1x28x28 Fashion-MNIST; global average pooling takes any input size) is trained here
(or loaded with --checkpoint), 50% of every channel group is removed (l1, physically), BatchNorm is
recalibrated, and two copies get the same fine-tune (E epochs at LR, then R at LR/10, same seed and batch
order): one on the task loss only, one with KL distillation from the original (by default the library's
weight 0.5 and T = 4). The test top-1 of each is printed, with the per-seed differences over `--seeds`.
The teacher should be trained to convergence (--baseline-epochs): distilling from an under-trained one
pulls the student down to it.
Training and fine-tuning run at 1 thread (torch.set_num_threads(1)).

    python benchmarks/distill_ablation.py [--quick] [--checkpoint resnet20_fmnist.pt] [--seeds 0 1]
        [--baseline-epochs N] [--weight 0.5] [--temperature 4]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch

from prunequant.data import load_dataset, make_loaders
from prunequant.models import build, load_checkpoint
from prunequant.pruning.structured import prune_channels, recalibrate_bn
from prunequant.seeding import seed_everything
from prunequant.training import Distillation, TrainConfig, Trainer, evaluate, finetune_then_refine

AMOUNT = 0.5


def baseline_model(loaders, splits, args) -> tuple[torch.nn.Module, str]:
    if args.checkpoint:
        model, _ = load_checkpoint(args.checkpoint)
        return model, f"loaded {args.checkpoint}"
    channels, _, size = splits.input_shape
    model = build("resnet20", num_classes=splits.num_classes, in_channels=channels, input_size=size)
    epochs = args.baseline_epochs or (8 if args.quick else 15)
    start = time.perf_counter()
    Trainer(model, loaders.train, loaders.val, TrainConfig(epochs=epochs, lr=0.1)).fit()
    return model, f"trained here: {epochs} epochs, {time.perf_counter() - start:.0f} s"


def finetuned_top1(pruned, loaders, config, refine, seed, distill) -> tuple[float, float]:
    """(test top-1, seconds) of a copy of `pruned` after the fine-tune, with `distill` options or None."""
    student = copy.deepcopy(pruned)
    seed_everything(seed)
    loaders.train.generator.manual_seed(seed)  # the same batch order for both variants
    start = time.perf_counter()
    finetune_then_refine(student, loaders.train, loaders.val, config, refine_epochs=refine, distill=distill)
    return evaluate(student, loaders.test).top1, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3k training images, short training (~5 min)")
    parser.add_argument("--checkpoint", help="a trained resnet20 Fashion-MNIST checkpoint (skips training)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--baseline-epochs", type=int, default=0, help="default 8 (--quick) or 15")
    parser.add_argument("--weight", type=float, default=0.5, help="distillation weight (default 0.5)")
    parser.add_argument("--temperature", type=float, default=4.0, help="KL temperature (default 4)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seed_everything(args.seeds[0])
    splits = load_dataset("fashion-mnist", val_fraction=0.1, seed=0, limit=3000 if args.quick else None)
    loaders = make_loaders(splits, 128, seed=0)
    teacher, source = baseline_model(loaders, splits, args)
    base = evaluate(teacher, loaders.test).top1
    example = next(iter(loaders.train))[0][:2]
    pruned = prune_channels(teacher, example, AMOUNT, importance="l1")
    after_cut = evaluate(pruned, loaders.test).top1
    recalibrate_bn(pruned, loaders.train, max_batches=20)
    recalibrated = evaluate(pruned, loaders.test).top1
    epochs, refine = (1, 1) if args.quick else (4, 2)
    config = TrainConfig(epochs=epochs, lr=0.02)
    print(f"[distill] baseline {100 * base:.2f}%, pruned {100 * after_cut:.2f}%", file=sys.stderr, flush=True)
    kd = Distillation(teacher, weight=args.weight, temperature=args.temperature)
    results = {False: [], True: []}
    for seed in args.seeds:
        for distill in (False, True):
            options = kd if distill else None
            results[distill].append(finetuned_top1(pruned, loaders, config, refine, seed, options))
            print(f"[distill] seed {seed} kd={distill} done", file=sys.stderr, flush=True)
    params = (sum(p.numel() for p in teacher.parameters()), sum(p.numel() for p in pruned.parameters()))
    print(
        f"ResNet-20, Fashion-MNIST 1x28x28 ({len(splits.train)} train / {len(splits.test)} test images), "
        f"baseline {source}; 1 thread, batch 128"
    )
    print(
        f"Baseline test top-1 {100 * base:.2f}% ({params[0]:,} params); 50% channels (l1): "
        f"{params[1]:,} params, {100 * after_cut:.2f}% right after the cut, {100 * recalibrated:.2f}% after "
        f"BN recalibration (20 batches)"
    )
    print(f"Fine-tune budget: {epochs} epoch(s) at LR 0.02, then {refine} at LR 0.002; seeds {args.seeds}")
    print()
    print("| fine-tune | test top-1 (per seed) | mean | Δ vs baseline | fine-tune s (mean) |")
    print("|---|---:|---:|---:|---:|")
    labels = {False: "task loss only", True: f"+ KD (KL, T={kd.temperature:g}, w={kd.weight:g})"}
    for distill, label in labels.items():
        scores = [100 * score for score, _ in results[distill]]
        mean = statistics.mean(scores)
        seconds = statistics.mean(s for _, s in results[distill])
        per_seed = ", ".join(f"{value:.2f}" for value in scores)
        print(f"| {label} | {per_seed} | {mean:.2f} | {mean - 100 * base:+.2f} | {seconds:.0f} |")
    gains = [100 * (kd - plain) for (kd, _), (plain, _) in zip(results[True], results[False], strict=True)]
    spread = f" (min {min(gains):+.2f}, max {max(gains):+.2f})" if len(gains) > 1 else ""
    print(f"\nKD minus plain, per seed: mean {statistics.mean(gains):+.2f} points{spread}")


if __name__ == "__main__":
    main()
