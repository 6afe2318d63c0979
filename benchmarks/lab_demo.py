"""Compression lab benchmark (issue #7): run a recipe end to end and print its headline figures.

    python benchmarks/lab_demo.py [--quick] [--threads N] [--recipe recipes/demo.toml] [--out DIR]

The recipe runs through `prunequant.lab.run_recipe` exactly as `prunequant run` does (--quick shrinks the
demo: 3000 images, fewer levels, no sensitivity). Printed: what the run cost (trials, wall and CPU time,
the lab's own overhead beyond the trials) and, per headline model, accuracy, file size and the speedup
measured twice: inside each trial (its fastest deployable form against the original in torch eager fp32,
interleaved rounds) and by the recipe's bench stage, if any (one process, interleaved rounds, pooled
medians, ratio to the original in torch). The process restarts itself with the glibc malloc settings of
DESIGN.md so torch eager is fair. On a machine shared with other jobs, --threads 1 avoids OpenMP barrier
stalls (a descheduled worker thread makes each eager op wait a scheduler slice) that make 2-thread torch
timings erratic. Prints markdown tables only.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

from prunequant.export.bench import restart_with_tuned_malloc
from prunequant.lab import ResultsStore, load_recipe, run_recipe
from prunequant.lab.env import budget_of
from prunequant.lab.select import best_trial
from prunequant.lab.store import DB_NAME, MODEL_STAGES

ROOT = Path(__file__).resolve().parent.parent


def quick(recipe):
    """The demo in miniature: fewer images and levels, no sensitivity stage (sections it has only)."""
    replace = dataclasses.replace
    changes = {
        "post_prune": {"amounts": (0.25, 0.5, 0.75)},
        "aware_prune": {"amounts": (0.5, 0.75)},
        "post_quant": {"bits": (8, 4)},
        "aware_quant": {"bits": (4,)},
        "bench": {"repeats": 5},
    }
    sections = {
        name: replace(getattr(recipe, name), **fields)
        for name, fields in changes.items()
        if getattr(recipe, name) is not None
    }
    return replace(
        recipe,
        data=replace(recipe.data, limit=3000),
        baseline=replace(recipe.baseline, epochs=3),
        sensitivity=None,
        **sections,
    )


def cost_table(rows, wall_s: float, cpu_s: float) -> str:
    trial_s = sum(row.duration_s or 0.0 for row in rows)
    lines = [
        "| stages | trials | done | failed | wall s | CPU s | sum of trial times s | lab overhead |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| {len({r.stage for r in rows})} | {len(rows)} | {sum(r.status == 'done' for r in rows)} | "
        f"{sum(r.status == 'failed' for r in rows)} | {wall_s:.1f} | {cpu_s:.1f} | {trial_s:.1f} | "
        f"{100 * (wall_s - trial_s) / wall_s:.1f}% |",
    ]
    return "\n".join(lines)


def headline_table(rows, recipe) -> str:
    baseline = next(row for row in rows if row.stage == "profile")
    run = recipe.run
    picks = [("original", baseline)]
    for stage in MODEL_STAGES:
        best = best_trial([r for r in rows if r.stage == stage], baseline, budget_of(recipe), run.objective)
        if best is not None:
            picks.append((stage, best))
    speed = _bench_speedups(rows)
    lines = [
        "| stage | model | top-1 % | Δ top-1 | size KB | size ratio | PD | deployed speedup (fastest form) | "
        "bench: torch speedup (b=1 / b=32) | bench: onnxruntime speedup (b=1 / b=32) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for stage, row in picks:
        torch_speed = speed.get((row.label, "torch"), "-")
        ort_speed = speed.get((row.label, "onnxruntime"), "-")
        lines.append(
            f"| {stage} | {row.label} | {100 * row.get('top1'):.2f} | "
            f"{100 * (row.get('top1') - baseline.get('top1')):+.2f} | {row.get('file_bytes') / 1024:.1f} | "
            f"{baseline.get('file_bytes') / row.get('file_bytes'):.2f}x | {row.get('pd'):.1f} | "
            f"{deployed_text(row)} | {torch_speed} | {ort_speed} |"
        )
    return "\n".join(lines)


def deployed_text(row) -> str:
    """The fastest deployable form's speedup over the original in torch eager fp32, or why there is none."""
    deploy = row.extra.get("deploy", {})
    if deploy.get("no_speed_gain"):
        return deploy["no_speed_gain"]
    return "-" if row.get("speedup") is None else f"{row.get('speedup'):.2f}x"


def _bench_speedups(rows) -> dict[tuple[str, str], str]:
    """(model label, runtime) -> 'a / b' speedups per batch size, from the bench stage."""
    bench = next((row for row in rows if row.stage == "bench" and row.status == "done"), None)
    if bench is None:
        return {}
    found: dict[tuple[str, str], list[str]] = {}
    for entry in bench.extra["rows"]:
        label = entry["model"].rsplit(" (", 1)[0]
        found.setdefault((label, entry["runtime"]), []).append(f"{entry['ratio_vs_first']:.2f}x")
    return {key: " / ".join(values) for key, values in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller demo (about a third of the work)")
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "demo.toml"), help="recipe to run")
    parser.add_argument("--out", help="run directory to keep (default: a temporary one)")
    parser.add_argument(
        "--threads", type=int, help="torch/onnxruntime threads per trial (default: the recipe's)"
    )
    args = parser.parse_args()
    restart_with_tuned_malloc([str(Path(__file__).resolve()), *sys.argv[1:]])
    recipe = load_recipe(args.recipe)
    if args.quick:
        recipe = quick(recipe)
    if args.threads is not None:
        recipe = dataclasses.replace(recipe, run=dataclasses.replace(recipe.run, threads=args.threads))
    with tempfile.TemporaryDirectory(prefix="pq-lab-bench-") as scratch:
        run_dir = Path(args.out) if args.out else Path(scratch) / "run"
        wall, cpu = time.perf_counter(), time.process_time()
        run_recipe(recipe, run_dir, progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        with ResultsStore(run_dir / DB_NAME) as store:
            rows = store.rows()
    threads = f", {recipe.run.threads} thread(s)" if recipe.run.threads else ""
    print(f"## Lab run: {Path(args.recipe).name}{' (--quick)' if args.quick else ''}{threads}\n")
    print(cost_table(rows, wall, cpu))
    print(
        f"\n## Headline models (best per stage {budget_of(recipe).describe()}, by {recipe.run.objective})\n"
    )
    print(headline_table(rows, recipe))


if __name__ == "__main__":
    main()
