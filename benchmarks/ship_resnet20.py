"""Ship ResNet-20 on Fashion-MNIST (issue 12): train it, let the lab pick the fastest deployable form
within a 1-point budget, and compare that shipped file with torch eager fp32.

    python benchmarks/ship_resnet20.py [--quick] [--pt2e] [--out DIR]

The zoo's ResNet-20 (1 input channel) is trained in the run's profile stage for a few epochs (the time is
printed). The lab then tries 8-bit PTQ and 50% channel pruning (fp32 and 8-bit QAT), measures every
candidate as deployed (onnxruntime fp32 / int8), interleaved against the original in torch eager fp32 at
batch 1 and 64, 1 thread, and ships the fastest one within the budget (objective "latency"), plus, per
batch size, another form of the same trial where it is faster there (the card's `per_batch`). Printed: the
lab's answer at each batch against that batch's target (>= 4x at batch 64, >= 8x at batch 1, both within
1 point of its own baseline on the full test split, evaluated on the recommended file), the fastest
candidate regardless of budget, and
the accuracy-speed Pareto front, also saved as a plot. --quick: fewer images and epochs (figures are then
only indicative). --pt2e: also deploy every candidate on the torch-native int8 runtime (PT2E + torch.compile,
"pt2e-int8"; each form compiles in its own process, minutes more); forms that failed are listed with their
error. The process restarts itself with the glibc malloc settings of DESIGN.md so torch eager
is timed fairly; a figure taken on a busy machine is marked "under load".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from prunequant.export.bench import restart_with_tuned_malloc
from prunequant.lab import ResultsStore, parse_recipe, run_recipe
from prunequant.lab.select import Choice, deployable
from prunequant.lab.store import DB_NAME

TARGETS = {"64": 4.0, "1": 8.0}
MAX_DROP_POINTS = 1.0

RECIPE = """
[run]
seed = 0
objective = "latency"
threads = 1
eval_batches = {eval_batches}
deploy_batch = 64
timing_rounds = {rounds}
timing_repeats = 5
{runtimes}
[task]
max_drop = 0.01

[model]
arch = "resnet20"

[data]
dataset = "fashion-mnist"
limit = {limit}

[baseline]
optimizer = "adam"
lr = 0.003
epochs = {epochs}
weight_decay = 0.0001
batch_size = 128

[post_quant]
bits = [8]
a_bits = 8
granularity = "channel"

[structured]
amounts = [0.5]
importance = ["l1"]
formats = ["fp32", "w8a8"]
schedules = ["one-shot"]
round_to = 8
epochs = {finetune}
refine_epochs = 1
"""


PT2E_RUNTIMES = 'runtimes = ["onnxruntime-fp32", "onnxruntime-int8", "pt2e-int8"]\n'


def recipe_text(quick: bool, pt2e: bool = False) -> str:
    """The benchmark's recipe: --quick trains on 6,000 images for 2 epochs, else 20,000 for 6; `pt2e` adds
    the pt2e-int8 runtime to the default onnxruntime ones."""
    runtimes = PT2E_RUNTIMES if pt2e else ""
    if quick:
        return RECIPE.format(eval_batches=4, rounds=3, limit=6000, epochs=2, finetune=1, runtimes=runtimes)
    return RECIPE.format(eval_batches=8, rounds=5, limit=20000, epochs=6, finetune=3, runtimes=runtimes)


def pareto_front(choices: list[Choice]) -> list[Choice]:
    """Forms not beaten on both validation score and speedup at the deploy batch (fastest first)."""
    ordered = sorted(choices, key=lambda c: (-c.speed()["speedup"], -c.form["val_score"]))
    front: list[Choice] = []
    for choice in ordered:
        if not front or choice.form["val_score"] > front[-1].form["val_score"]:
            front.append(choice)
    return front


def save_plot(choices: list[Choice], front: list[Choice], baseline_val: float, path: Path) -> None:
    """Validation top-1 vs speedup at batch 64 for every form, the front joined, the budget line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7, 4.5))
    for runtime in sorted({c.runtime for c in choices}):
        mine = [c for c in choices if c.runtime == runtime]
        ax.scatter(
            [c.speed()["speedup"] for c in mine], [100 * c.form["val_score"] for c in mine], label=runtime
        )
    ax.plot(
        [c.speed()["speedup"] for c in front],
        [100 * c.form["val_score"] for c in front],
        "k--",
        lw=1,
        label="Pareto front",
    )
    ax.axhline(100 * baseline_val - MAX_DROP_POINTS, color="red", lw=0.8, label="1-point budget")
    ax.set_xlabel("speedup vs torch eager fp32, batch 64 (1 thread)")
    ax.set_ylabel("validation top-1 %")
    ax.set_title("ResNet-20 / Fashion-MNIST: accuracy vs deployed speed")
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def answer_row(card: dict[str, Any], batch: str) -> str:
    """The table row of the file the card recommends at `batch` (per_batch), checked against that batch's
    target and the 1-point budget on the full test split."""
    entry = card["per_batch"][batch]
    cells = [
        f"{v['speedup']:.2f}x ({v['p10']:.2f}-{v['p90']:.2f})"
        for v in (entry["speed"]["1"], entry["speed"]["64"])
    ]
    fast, kept = entry["speedup"] >= TARGETS[batch], entry["change"] >= -MAX_DROP_POINTS
    which = "the shipped file" if entry["main"] else "per-batch file"
    return (
        f"| lab's answer at batch {batch} ({which}): {card['label']} | {entry['runtime']} | "
        f"{100 * entry['test']['top1']:.2f}% ({entry['change']:+.2f} pts) | {entry['bytes'] / 1024:.1f} | "
        f"{cells[0]} | {cells[1]} | >= {TARGETS[batch]:g}x b{batch} {'met' if fast else 'MISSED'}, "
        f"<= 1 pt {'met' if kept else 'MISSED'} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6,000 images, 2 epochs (indicative figures)")
    parser.add_argument("--pt2e", action="store_true", help="also deploy on pt2e-int8 (PT2E + compile)")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: a temp folder)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = args.out or Path(tempfile.mkdtemp(prefix="ship-resnet20-")) / "run"
    summary = run_recipe(
        parse_recipe(recipe_text(args.quick, args.pt2e), name="ship_resnet20.toml"), out, progress=False
    )
    with ResultsStore(out / DB_NAME, read_only=True) as store:
        rows = store.rows()
    baseline = next(row for row in rows if row.stage == "profile")
    card = summary["ship"]
    print(f"## ResNet-20 on Fashion-MNIST ({'quick' if args.quick else 'full'}), run dir {out}\n")
    print(
        f"training: {len(baseline.extra['history'])} epochs; the profile trial (training, then the "
        f"original's measurements and deployable forms) took {baseline.duration_s:.0f} s at 1 thread\n"
    )
    print(
        "| model | runtime | test top-1 (file, full split) | KB | speedup b1 (p10-p90) | "
        "speedup b64 (p10-p90) | target |"
    )
    print("|---|---|---:|---:|---:|---:|---|")
    if card["shipped"]:
        print(
            f"| original | torch eager fp32 | {100 * card['original_test']['top1']:.2f}% | "
            f"{card['original_bytes'] / 1024:.1f} | 1.00x | 1.00x | |"
        )
        for batch in sorted(TARGETS, key=int, reverse=True):
            print(answer_row(card, batch))
        conditions = card["conditions"]
        print(
            f"\nconditions: {conditions['threads']} thread, {conditions['rounds']} rounds x "
            f"{conditions['repeats']}, load average {conditions['load_avg']:.2f}"
            f"{' (UNDER LOAD)' if conditions['under_load'] else ''}, "
            f"malloc tuned {conditions['malloc_tuned']}"
        )
    else:
        closest = card.get("closest") or {}
        print(
            f"| nothing shipped: {card['reason']}; closest {closest.get('label')} misses by "
            f"{100 * closest.get('missed_by', 0):.2f} pts | | | | | | |"
        )
    fastest = card.get("fastest_any_budget")
    if fastest:
        print(
            f"\nfastest regardless of budget: {fastest['label']} on {fastest['runtime']}: "
            f"{fastest['speed']['64']['speedup']:.2f}x at batch 64, "
            f"{fastest['speed']['1']['speedup']:.2f}x at batch 1, "
            f"validation top-1 {100 * fastest['val_score']:.2f}% ({-100 * fastest['val_drop']:+.2f} pts)"
        )
    choices = deployable(rows)
    front = pareto_front(choices)
    print("\n### Pareto front (validation top-1 vs speedup at batch 64)\n")
    print("| trial | runtime | val top-1 | speedup b64 | KB |\n|---|---|---:|---:|---:|")
    for choice in front:
        print(
            f"| {choice.row.label} | {choice.runtime} | {100 * choice.form['val_score']:.2f}% | "
            f"{choice.speed()['speedup']:.2f}x | {choice.form['bytes'] / 1024:.1f} |"
        )
    failed = [
        (row.label, form["runtime"], form["error"])
        for row in rows
        for form in row.extra.get("deploy", {}).get("forms", [])
        if "error" in form
    ]
    for label, runtime, error in failed:
        print(f"\nfailed form: {label} on {runtime}: {error}")
    plot = out / "pareto_accuracy_speed.png"
    save_plot(choices, front, baseline.get("val_score"), plot)
    print(f"\nplot: {plot}")
    return 0


if __name__ == "__main__":
    restart_with_tuned_malloc([__file__, *sys.argv[1:]])
    sys.exit(main())
