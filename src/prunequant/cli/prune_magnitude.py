"""`prunequant prune --method magnitude`: percentile magnitude pruning, schedules, sweeps, dynamic threshold.

The shared options (--amount, -o, --finetune-epochs, --lr, ...) come from prune_cmd; this adds its own.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from prunequant.cli.argtypes import parse_float_list
from prunequant.cli.common import input_shape_of, load_data, print_human, resolve_model, resolve_task
from prunequant.cli.numbers import nonneg_float, nonneg_int, positive_int, ranged
from prunequant.cli.options import add_format_option
from prunequant.cli.prune_cmd import refuse_nothing_pruned
from prunequant.cli.tables import print_table, rows_table
from prunequant.errors import ConfigError
from prunequant.export.storage import compressed_size_report, save_compressed
from prunequant.models import save_checkpoint
from prunequant.pruning.unstructured import (
    SCOPES,
    UnstructuredConfig,
    dynamic_prune,
    make_permanent,
    prune_and_finetune,
    sparsity_report,
    sweep_unstructured,
)
from prunequant.seeding import seed_everything
from prunequant.sweep_output import sweep_paths
from prunequant.tasks import MetricSpec, Task, default_task
from prunequant.training import TrainConfig, evaluate
from prunequant.validation import check_fraction

if TYPE_CHECKING:
    from prunequant.data import Loaders

COMPRESSED_SUFFIX = ".pqz"


def add_arguments(groups: dict[str, argparse._ArgumentGroup]) -> None:
    """The magnitude-only options of `prunequant prune`, each in its section of `groups`."""
    what = groups["what"]
    what.add_argument(
        "--scope",
        choices=SCOPES,
        help="magnitude: percentile over all layers or per layer (default global; a sweep runs both)",
    )
    what.add_argument(
        "--include-bias", action="store_true", help="magnitude: prune biases too (seed 000 does)"
    )
    what.add_argument(
        "--keep-first-last",
        action="store_true",
        help="magnitude: leave the first conv and the last linear layer dense",
    )
    schedule = groups["schedule"]
    schedule.add_argument(
        "--steps", type=positive_int, default=3, help="magnitude: iterative rounds / AGP steps (default 3)"
    )
    schedule.add_argument(
        "--dynamic",
        action="store_true",
        help="magnitude: raise sparsity while the task's metric stays within --budget, fine-tuning "
        "--finetune-epochs per step",
    )
    schedule.add_argument(
        "--budget",
        type=nonneg_float,
        default=0.01,
        help="dynamic: allowed drop of the task's metric in its unit, 0.01 = 1 point of accuracy",
    )
    schedule.add_argument(
        "--dynamic-step",
        type=ranged(float, 0.0, 1.0, open_low=True, open_high=True),
        default=0.05,
        help="dynamic: first sparsity step (default 0.05)",
    )
    sweep = groups["sweep"]
    sweep.add_argument(
        "--amounts", type=parse_float_list, help="sweep these amounts, e.g. 0,0.25,0.5,0.75 (needs --dataset)"
    )
    sweep.add_argument("--sweep-dir", help="write the sweep's CSV, markdown table and plot here")
    sweep.add_argument(
        "--latency-rounds", type=nonneg_int, default=10, help="timing rounds at batch 64 (0: skip)"
    )
    add_format_option(sweep)
    groups["output"].add_argument(
        "--compressed",
        action="store_true",
        help=f"magnitude: write the sparse container (also when -o ends in {COMPRESSED_SUFFIX})",
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    mode = "sweep" if args.amounts is not None else "dynamic" if args.dynamic else "single"
    if mode == "single" and args.amount is None:
        raise ConfigError("give --amount (e.g. 0.5), or --amounts for a sweep, or --dynamic")
    amount = check_fraction("--amount", args.amount) if mode == "single" else 0.0
    if mode != "single" and not args.dataset:
        raise ConfigError(f"a {mode} run scores the model: pass --dataset NAME (e.g. fashion-mnist)")
    config = UnstructuredConfig(
        amount,
        args.scope or "global",
        args.include_bias,
        tuple(args.exclude),
        dict(args.layer_amount),
        args.keep_first_last,
    )
    train_config = TrainConfig(epochs=args.finetune_epochs, lr=args.lr, batch_size=args.batch_size)
    seed_everything(args.seed)
    model, meta = resolve_model(args)
    loaders = load_data(args)[1] if args.dataset else None
    task = resolve_task(args) or default_task()
    if mode == "sweep":
        return _sweep(args, model, meta, config, loaders, train_config, task)
    before = evaluate(model, loaders.test, task).score if loaders else None
    if mode == "dynamic":
        dynamic = dynamic_prune(
            model,
            loaders,
            budget=args.budget,
            step=args.dynamic_step,
            finetune=train_config,
            prune=config,
            task=task,
        )
        accepted = dynamic.prune.to_dict() if dynamic.prune else {"sparsity": 0.0, "layers": {}}
        summary: dict[str, Any] = {"dynamic": dynamic.to_dict(), **accepted}
    else:
        result = prune_and_finetune(
            model,
            config,
            loaders.train if loaders else None,
            loaders.val if loaders else None,
            train_config,
            schedule=args.schedule,
            steps=args.steps,
            refine_epochs=args.refine_epochs,
            refine_factor=args.refine_lr_factor,
            task=task,
        )
        summary = {**result.prune.to_dict(), "schedule": args.schedule, "schedule_events": result.events}
    pruned = evaluate(model, loaders.test, task) if loaders else None
    after = pruned.score if pruned is not None else None
    make_permanent(model)
    report = sparsity_report(model, include_bias=config.include_bias)
    if mode == "single" and amount > 0 or mode == "dynamic":
        refuse_nothing_pruned(args, report.sparsity > 0, f"overall sparsity {report.sparsity:.4f}")
    sizes = compressed_size_report(model)
    output = {
        "method": "magnitude",
        **summary,
        "overall_sparsity": report.sparsity,
        "metric": task.primary,
        "accuracy_before": before,
        "accuracy_after": after,
        "dense_bytes": sizes["dense_bytes"],
        "compressed_bytes": sizes["file_bytes"],
        "output": _save(args, model, meta, summary, None if after is None else {task.primary: after}),
        "warnings": list(pruned.warnings) if pruned is not None else [],
    }
    output["output_bytes"] = Path(output["output"]).stat().st_size if output["output"] else None
    print_human(args, _summary_line(output, task.primary_metric))
    return output


def _sweep(
    args: argparse.Namespace,
    model: torch.nn.Module,
    meta: dict[str, Any],
    config: UnstructuredConfig,
    loaders: Loaders,
    train_config: TrainConfig,
    task: Task,
) -> dict[str, Any]:
    if args.latency_rounds < 0:
        raise ConfigError(f"--latency-rounds must be >= 0, got {args.latency_rounds}")
    example = torch.randn(64, *input_shape_of(meta)) if args.latency_rounds else None
    rows = sweep_unstructured(
        model,
        loaders.test,
        args.amounts,
        scopes=(args.scope,) if args.scope else SCOPES,
        prune=config,
        train_loader=loaders.train,
        val_loader=loaders.val,
        finetune=train_config if args.finetune_epochs else None,
        refine_epochs=args.refine_epochs,
        refine_factor=args.refine_lr_factor,
        example_input=example,
        latency_rounds=args.latency_rounds,
        task=task,
        sweep_dir=args.sweep_dir,
    )
    paths = sweep_paths(args.sweep_dir, "sweep") if args.sweep_dir else {}
    print_table(args, rows_table(rows, "magnitude pruning sweep"))
    return {"method": "magnitude", "rows": rows, "outputs": paths}


def _save(
    args: argparse.Namespace,
    model: torch.nn.Module,
    meta: dict[str, Any],
    summary: dict[str, Any],
    metrics: dict[str, float] | None,
) -> str | None:
    if not args.output:
        return None
    meta = dict(meta)
    previous = meta.pop("metrics", None)
    if previous is not None:
        meta["unpruned_metrics"] = previous
    if metrics is not None:
        meta["metrics"] = metrics
    meta["pruning"] = {"method": "magnitude", **summary}
    path = Path(args.output)
    if args.compressed or path.suffix == COMPRESSED_SUFFIX:
        save_compressed(model, path, **meta)
    else:
        save_checkpoint(model, path, **meta)
    return str(path)


def _summary_line(output: dict[str, Any], spec: MetricSpec) -> str:
    text = f"sparsity {100 * output.get('sparsity', 0.0):.2f}% of pruned weights"
    if output["accuracy_after"] is not None:
        before, after = spec.format(output["accuracy_before"]), spec.format(output["accuracy_after"])
        text += f"  {spec.label or spec.name} {before} -> {after}"
    text += f"  compressed {output['compressed_bytes']:,} B (dense {output['dense_bytes']:,} B)"
    text += f"  -> {output['output']}" if output["output"] else ""
    return "\n".join([text, *(f"warning: {line}" for line in output["warnings"])])
