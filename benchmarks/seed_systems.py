"""The seeds' own systems through the seeds' compression steps, at reduced scale, with the seeds' tables.

Systems (issue 13), each the lab running its seed recipe (recipes/seed*.toml) at a reduced scale:
- flow:   lidarflow on flying-fashion (seed 000), EPE px and KITTI outlier rate;
- unet, frrnet: segmentation on fashion-scenes (seed 003), mIoU and pixel accuracy;
- vae:    conv_vae on Fashion-MNIST pixels in [0, 1] (seed 003), ELBO nats and FID-FMNIST (Fréchet
          distance on the shipped Fashion-MNIST classifier's penultimate features, NOT Inception FID);
- det:    tiny_yolo on fashion-scenes boxes (seed 004), mAP@0.5.
Every system runs: the baseline trained in the run, post-training magnitude pruning levels, N-bit PTQ
levels (weights, per tensor), one structured level (one-shot 50 % channels, physically removed, short
fine-tune), the combination of the best pruning and bit levels within the recipe's budget; the detector
also runs seed 004's sparsity training, network slimming and residual-block removal.

Per system it prints one table: method, level, the primary metric, its change against the original (in
the metric's units, + = better), a second metric, zeros (share of weights that are 0, pruning and
quantization rounding), params, MACs, compressed size, the eager fp32 speedup over the original as
deployed (BatchNorm folded, quantized weights rounded into plain layers: masked zeros and N-bit weights
give ~1.0x, only removed channels or blocks are faster), timed after the run for every model of the
system in one process at 1 thread and batch 1, interleaved over rounds (prunequant.timing.compare), as
the median ratio with its p10-p90 spread over the rounds; and the performance density (seed 003: score % /
(weight Mb + activation Mb) at the trial's bits) where the metric is a fraction (mIoU, mAP).
Figures go to --out.

    python benchmarks/seed_systems.py --quick --out runs/seed_figures      # smoke run, < 3 min at 1 thread
    python benchmarks/seed_systems.py --out runs/seed_figures               # reduced scale, ~1 h at 1 thread
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from prunequant.atomic import atomic_path
from prunequant.lab import Recipe, load_recipe, run_recipe
from prunequant.lab import sections as sec
from prunequant.lab.env import budget_of, environment, model_from_bytes, task_of
from prunequant.lab.measure import deployed_fp32
from prunequant.lab.store import ResultsStore, TrialRow
from prunequant.tasks import run_model
from prunequant.timing import compare

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
GENERATED = ("flying-fashion", "fashion-scenes")


@dataclass(frozen=True)
class System:
    """A seed system: its recipe, an optional model override and the table's second metric."""

    name: str
    recipe: str
    second: str
    arch: str = ""
    kwargs: tuple = ()


SYSTEMS = (
    System("flow", "seed000_flow", "outlier_rate"),
    System("unet", "seed003_seg", "pixel_acc"),
    System("frrnet", "seed003_seg", "pixel_acc", "frrnet", (("width", 8), ("residual_channels", 8))),
    System("vae", "seed003_vae", "fid_fmnist"),
    System("det", "seed004_det", "map"),
)


@dataclass(frozen=True)
class Scale:
    """How far the recipes are cut down."""

    samples: int
    epochs: int
    batches: int
    eval_batches: int
    amounts: tuple[float, ...]
    bits: tuple[int, ...]
    finetune_epochs: int
    repeats: int
    speed_rounds: int


QUICK = Scale(64, 1, 3, 2, (0.25, 0.5), (8, 4), 1, 3, 7)
FULL = Scale(1000, 3, 0, 0, (0.1, 0.25, 0.5, 0.75), (16, 12, 8, 6, 4), 1, 10, 21)


def reduced(system: System, scale: Scale) -> Recipe:
    """The system's recipe at `scale`: post prune / post quant sweeps, one structured level, combine."""
    recipe = load_recipe(RECIPES / f"{system.recipe}.toml")
    data = recipe.data
    if data.dataset in GENERATED:
        data = replace(data, options={**data.options, "size": scale.samples})
    else:
        data = replace(data, limit=2 * scale.samples if scale is QUICK else 10 * scale.samples)
    model = recipe.model
    if system.arch:
        model = replace(model, arch=system.arch, kwargs=dict(system.kwargs))
    batch = 8 if scale is QUICK else recipe.baseline.batch_size
    epochs = scale.finetune_epochs
    importance = recipe.structured.importance[:1] if recipe.structured else ("l1",)
    changes: dict = {
        "data": data,
        "model": model,
        "run": replace(recipe.run, eval_batches=scale.eval_batches, threads=1, objective="latency"),
        "baseline": replace(
            recipe.baseline, epochs=scale.epochs, max_batches_per_epoch=scale.batches, batch_size=batch
        ),
        "profile": replace(recipe.profile, repeats=scale.repeats),
        "post_prune": sec.PruneSweep(amounts=scale.amounts, scope="global"),
        "post_quant": sec.QuantSweep(bits=scale.bits, granularity="tensor"),
        "aware_prune": None,
        "aware_quant": None,
        "combine": sec.CombineSection(source="post", epochs=0, refine_epochs=epochs),
        "structured": sec.StructuredSection(
            amounts=(0.5,), importance=importance, formats=("fp32",), schedules=("one-shot",),
            epochs=epochs, refine_epochs=0,
        ),
        "bench": None,
        "export": None,
    }  # fmt: skip
    for stage, level in (("slimming", {"amounts": (0.5,)}), ("layer_prune", {"blocks": (2,)})):
        section = getattr(recipe, stage)
        if section is not None:
            changes[stage] = replace(section, sparsity_epochs=1, epochs=epochs, refine_epochs=0, **level)
    return replace(recipe, **changes)


METHODS = {
    "profile": "original",
    "post_prune": "magnitude prune (post)",
    "post_quant": "uniform PTQ (weights)",
    "structured": "channels one-shot",
    "combine": "combined best",
    "slimming": "network slimming",
    "layer_prune": "residual-block removal",
}


def level_of(row: TrialRow) -> str:
    """The level column: the row's label without the method words."""
    words = {"post prune ": "", "post quant ": "", "combined: ": "", "one-shot channels ": ""}
    label = row.label
    for old, new in words.items():
        label = label.replace(old, new)
    return "-" if row.stage == "profile" else label


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


REPEATS = 5
"""Timed calls per model per round."""

Speed = tuple[float, float, float]
"""Median speedup over the original and its p10-p90 spread over the rounds."""


def speeds(rows: list[TrialRow], recipe: Recipe, run_dir: Path, rounds: int) -> dict[str, Speed]:
    """Every checkpointed trial's eager fp32 model as deployed, timed interleaved with the others at 1
    thread and batch 1 (prunequant.timing.compare): the median ratio to the original, with its spread."""
    env = environment(recipe)
    models = {
        row.trial_id: deployed_fp32(
            model_from_bytes((run_dir / row.checkpoint).read_bytes(), recipe.model.arch)[0]
        )
        for row in rows
        if row.checkpoint
    }
    base_id = next(row.trial_id for row in rows if row.stage == "profile")
    calls = {trial: functools.partial(run_model, model, env.latency_batch) for trial, model in models.items()}
    result = compare(calls, baseline=base_id, rounds=rounds, repeats=REPEATS)
    return {t.name: (t.speedup.value, t.speedup.p10, t.speedup.p90) for t in result.timings}


def load_note() -> str:
    """The 1-minute load average against the cores, and a warning when other work competes for them."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    busy = " -- BUSY: other processes compete for the cores, speed columns unreliable" * (load > cores)
    return f"load average {load:.1f} on {cores} cores{busy}"


def table(
    name: str, rows: list[TrialRow], recipe: Recipe, second: str, seconds: float, speed: dict[str, Speed]
) -> list[str]:
    """The seed-style markdown table of one system's finished trials."""
    spec, other = budget_of(recipe).metric, task_of(recipe).metric(second)
    baseline = next(row for row in rows if row.stage == "profile")
    base = baseline.get("score")
    has_pd = any(row.get("pd") is not None for row in rows)
    head = [
        "method",
        "level",
        f"{spec.label} {spec.arrow}",
        "Δ (+ = better)",
        f"{other.label} {other.arrow}",
        "zeros %",
        "params",
        "MMACs",
        "size KB",
        "speedup (p10-p90)",
    ] + (["PD"] if has_pd else [])
    out = [
        f"### {name}: {len(rows)} trials; baseline trained in the run "
        f"({fmt(baseline.duration_s, 1)} s), this run {seconds:.0f} s (a rerun reuses finished trials); "
        f"timed at {load_note()}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|",
    ]
    for row in rows:
        score = row.get("score")
        delta = None if score is None or base is None else 0.0 - spec.drop(base, score)
        params = row.get("params") or 0
        median, low, high = speed.get(row.trial_id, (math.nan,) * 3)
        zeros = 100 * (1 - row.get("nonzero_params", params) / params) if params else None
        cells = [
            METHODS.get(row.stage, row.stage), level_of(row),
            fmt(spec.display(score)) if score is not None else "n/a",
            f"{spec.display(delta):+.2f}" if delta is not None else "n/a",
            fmt(other.display(row.get(second)) if row.get(second) is not None else None, 3),
            fmt(zeros, 1), f"{params:,}", fmt((row.get("macs") or 0) / 1e6, 2),
            fmt((row.get("file_bytes") or 0) / 1024, 1), f"{fmt(median)}x ({fmt(low)}-{fmt(high)})",
            *([fmt(row.get("pd"), 1)] if has_pd else []),
        ]  # fmt: skip
        out.append("| " + " | ".join(cells) + " |")
    return out


def figure(name: str, rows: list[TrialRow], recipe: Recipe, out: Path) -> Path:
    """Three panels: metric vs pruning amount, metric and zero share vs bits, metric vs MACs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = budget_of(recipe).metric
    base = next(row for row in rows if row.stage == "profile")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    prune = sorted((r.config["steps"][0]["amount"], r.get("score")) for r in rows if r.stage == "post_prune")
    prune = [(0.0, base.get("score")), *prune]
    quant = sorted((r.config["steps"][0]["w_bits"], r) for r in rows if r.stage == "post_quant")
    for ax in axes:
        ax.axhline(spec.display(base.get("score")), color="gray", ls="--", lw=1, label="original")
    if prune:
        axes[0].plot([100 * a for a, _ in prune], [spec.display(s) for _, s in prune], "o-")
    axes[0].set(xlabel="weights pruned % (post, global magnitude)", ylabel=spec.title)
    axes[0].set_title(f"{name}: pruning")
    if quant:
        axes[1].plot([b for b, _ in quant], [spec.display(r.get("score")) for _, r in quant], "o-")
        zeros = axes[1].twinx()
        zeros.plot([b for b, _ in quant], [100 * r.extra["steps"].get("zero_share", 0) for _, r in quant],
                   "s:", color="tab:red")  # fmt: skip
        zeros.set_ylabel("weights quantized to 0 %", color="tab:red")
        axes[1].invert_xaxis()
    axes[1].set(xlabel="weight bits (PTQ)", title=f"{name}: quantization")
    for stage in dict.fromkeys(row.stage for row in rows):
        points = [(r.get("macs") / 1e6, spec.display(r.get("score"))) for r in rows if r.stage == stage]
        axes[2].scatter(*zip(*points, strict=True), label=METHODS.get(stage, stage))
    axes[2].set(xlabel="MMACs per sample", title=f"{name}: every trial")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    path = out / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def run_system(system: System, scale: Scale, runs: Path) -> tuple[list[TrialRow], Recipe, float]:
    recipe = reduced(system, scale)
    start = time.perf_counter()
    with warnings.catch_warnings():  # "left unpruned" notes stay in each trial's extra
        warnings.simplefilter("ignore")
        summary = run_recipe(recipe, runs / system.name, progress=False)
    seconds = time.perf_counter() - start
    with ResultsStore(runs / system.name / "results.sqlite", read_only=True) as store:
        rows = store.rows()
    failed = [f"{row.label}: {row.error}" for row in rows if row.status != "done"]
    if failed or summary["failed"]:
        print(f"{system.name}: {len(failed)} trials failed:\n  " + "\n  ".join(failed), file=sys.stderr)
    return [row for row in rows if row.status == "done"], recipe, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny data, one epoch, 2 levels")
    parser.add_argument("--out", type=Path, default=Path("runs/seed_systems/figures"), help="figures folder")
    parser.add_argument("--runs", type=Path, default=None, help="run directories (default: next to --out)")
    parser.add_argument(
        "--systems", default=",".join(s.name for s in SYSTEMS), help="comma-separated, run in this order"
    )
    args = parser.parse_args()
    wanted = [name.strip() for name in args.systems.split(",") if name.strip()]
    unknown = sorted(set(wanted) - {s.name for s in SYSTEMS})
    if unknown:
        parser.exit(2, f"unknown system {unknown[0]!r}; known: {', '.join(s.name for s in SYSTEMS)}\n")
    torch.set_num_threads(1)
    scale = QUICK if args.quick else FULL
    runs = args.runs or args.out.parent / ("runs-quick" if args.quick else "runs")
    print(f"seed systems at {'quick' if args.quick else 'reduced'} scale: {scale}; torch threads 1\n")
    total = time.perf_counter()
    by_name = {s.name: s for s in SYSTEMS}
    for system in (by_name[name] for name in dict.fromkeys(wanted)):
        rows, recipe, seconds = run_system(system, scale, runs)
        speed = speeds(rows, recipe, runs / system.name, rounds=scale.speed_rounds)
        print("\n".join(table(system.name, rows, recipe, system.second, seconds, speed)), flush=True)
        print(f"figure: {figure(system.name, rows, recipe, args.out)}\n", flush=True)
    print(f"total {time.perf_counter() - total:.0f} s; run directories under {runs}")


if __name__ == "__main__":
    main()
