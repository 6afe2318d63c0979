"""`prunequant prune --method channel|layer`: structured pruning with physical removal, then fine-tuning.

The shared options (--amount, -o, --finetune-epochs, --lr, ...) come from prune_cmd; this adds its own.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from prunequant.cli.common import example_input, load_data, print_human, resolve_model, resolve_task
from prunequant.cli.numbers import positive_int
from prunequant.cli.prune_cmd import refuse_nothing_pruned
from prunequant.errors import ConfigError
from prunequant.models import save_checkpoint
from prunequant.profiling import profile
from prunequant.pruning.structured import (
    ALLOCATIONS,
    ChannelPruneConfig,
    LayerwisePruning,
    StepwisePruning,
    available_importances,
    dependency_groups,
    prune_channels,
    prune_layers,
    recalibrate_bn,
    reinitialize,
)
from prunequant.seeding import seed_everything
from prunequant.tasks import Inputs, Task, default_task
from prunequant.tasks.io import take
from prunequant.training import TrainConfig, evaluate, finetune_then_refine


def add_arguments(groups: dict[str, argparse._ArgumentGroup]) -> None:
    """The channel/layer-only options of `prunequant prune`, each in its section of `groups`."""
    groups["what"].add_argument("--blocks", type=positive_int, help="layer: residual blocks to remove")
    what = groups["criteria"]
    what.add_argument(
        "--importance",
        help=f"channel criterion: {', '.join(available_importances())} (default l1); "
        "layer criterion: bn_gamma, l1, random (default bn_gamma)",
    )
    what.add_argument(
        "--allocation",
        choices=ALLOCATIONS,
        default="uniform",
        help="channel: per-group amounts (default uniform)",
    )
    what.add_argument(
        "--round-to",
        type=positive_int,
        default=1,
        help="channel: keep channel counts multiples of this (e.g. 8)",
    )
    what.add_argument(
        "--min-channels",
        type=positive_int,
        default=1,
        help="channel: never keep fewer channels in a group (default 1)",
    )
    what.add_argument(
        "--calib-batches",
        type=positive_int,
        default=8,
        help="channel / layer: batches for data-driven criteria and for re-estimating BatchNorm statistics "
        "(default 8)",
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    model, meta = resolve_model(args)
    seed_everything(args.seed)
    example = example_input(meta, 2)  # a tensor, or a tuple / dict for several inputs
    single = take(example, 1)
    task = resolve_task(args) or default_task()
    loaders = load_data(args, args.dataset or meta.get("dataset"))[1] if args.dataset else None
    schedule = args.schedule
    if schedule != "oneshot" and (loaders is None or not args.finetune_epochs):
        raise ConfigError(f"--schedule {schedule} needs --dataset and --finetune-epochs > 0")
    before = profile(model, single, latency=False).total
    output: dict[str, Any] = {"method": args.method, "metric": task.primary}
    if loaders is not None:
        output["accuracy_before"] = evaluate(model, loaders.test, task).score
    if args.method == "layer":
        if args.blocks is None:
            raise ConfigError("--method layer needs --blocks N (residual blocks to remove)")
        result = prune_layers(model, example, args.blocks, args.importance or "bn_gamma", return_result=True)
        pruned, record, skipped = result.model, result.meta(), []
    else:
        pruned, record, skipped = _channel(args, model, example, loaders, task)
    if loaders is not None and (schedule == "oneshot" or args.method == "layer"):
        # stale BatchNorm statistics cost more accuracy than the removed channels (see the benchmark)
        recalibrate_bn(pruned, loaders.train, max_batches=args.calib_batches, task=task)
        output["accuracy_pruned"] = evaluate(pruned, loaders.test, task).score
    if loaders is not None and args.finetune_epochs + args.refine_epochs > 0:
        # stepwise / layerwise schedules prune during the fine-tune
        for schedule in _finetune(args, pruned, example, loaders, output, task):
            record.update(pruning_steps=len(schedule.results), importance=schedule.config.importance)
            skipped = sorted({name for result in schedule.results for name in result.skipped_layers})
    after = profile(pruned, single, latency=False).total
    output.update(
        params_before=before["params"],
        params_after=after["params"],
        macs_before=before["macs"],
        macs_after=after["macs"],
        skipped_layers=skipped,
        pruning=record,
    )
    if loaders is not None:
        output["accuracy_after"] = evaluate(pruned, loaders.test, task).score
    removed = after["params"] < before["params"] or args.method == "channel" and not args.amount
    skipped_text = f"left unpruned: {', '.join(skipped[:5])}" if skipped else "no layer was skipped"
    refuse_nothing_pruned(args, removed, f"params {before['params']:,} before and after; {skipped_text}")
    if args.output:
        kept = {key: meta[key] for key in ("arch", "arch_kwargs", "input_shape", "dataset") if key in meta}
        metrics = {key: output[key] for key in ("accuracy_before", "accuracy_after") if key in output}
        output["output"] = str(save_checkpoint(pruned, args.output, **kept, pruning=record, metrics=metrics))
    else:
        output["output"] = None
    print_human(args, _summary(output))
    return output


def _config(args: argparse.Namespace) -> ChannelPruneConfig:
    if args.amount is None:
        raise ConfigError("--method channel needs --amount, e.g. --amount 0.5")
    return ChannelPruneConfig(
        amount=args.amount,
        importance=args.importance or "l1",
        allocation=args.allocation,
        round_to=args.round_to,
        ignored_layers=tuple(args.exclude),
        per_layer=tuple(args.layer_amount),
        min_channels=args.min_channels,
        calib_batches=args.calib_batches,
        seed=args.seed,
    )


def _channel(args: argparse.Namespace, model: torch.nn.Module, example: Inputs, loaders: Any, task: Task):
    config = _config(args)
    if args.schedule in ("stepwise", "layerwise"):  # pruned during fine-tuning, in _finetune
        return model, {"method": "channel", "schedule": args.schedule, "amount": config.amount}, []
    result = prune_channels(
        model,
        example,
        config.amount,
        config.importance,
        config.allocation,
        config.round_to,
        config.ignored_layers,
        dict(config.per_layer),
        config.min_channels,
        loaders.val if loaders is not None else None,
        calib_batches=config.calib_batches,
        seed=config.seed,
        return_result=True,
        task=task,
    )
    pruned = result.model
    if args.schedule == "scratch":
        pruned = reinitialize(pruned, seed=args.seed)
    record = {**result.meta(), "schedule": args.schedule}
    return pruned, record, sorted(result.skipped_layers)


def _finetune(
    args: argparse.Namespace,
    model: torch.nn.Module,
    example: Inputs,
    loaders: Any,
    output: dict,
    task: Task,
) -> list[StepwisePruning | LayerwisePruning]:
    """Fine-tune then refine-tune `model` in place (stepwise/layerwise schedules prune it on the way)."""
    train = TrainConfig(epochs=args.finetune_epochs, lr=args.lr, batch_size=args.batch_size)
    callbacks = []
    if args.method == "channel" and args.schedule in ("stepwise", "layerwise"):
        config = _config(args)
        total = args.finetune_epochs * len(loaders.train)
        if args.schedule == "stepwise":
            steps = max(1, min(10, total // 2))  # the cubic ramp spans the first half of fine-tuning
            frequency = max(1, total // 2 // steps)
            callbacks.append(StepwisePruning(example, config, steps=steps, frequency=frequency))
        else:
            groups = len(dependency_groups(model, example).prunable)
            callbacks.append(LayerwisePruning(example, config, interval=max(1, total // 2 // max(1, groups))))
    result = finetune_then_refine(
        model,
        loaders.train,
        loaders.val,
        train,
        refine_epochs=args.refine_epochs,
        refine_factor=args.refine_lr_factor,
        callbacks=callbacks,
        task=task,
    )
    output["finetune"] = {
        "finetuned_val_score": result.finetuned.score if result.finetuned else None,
        "refined_val_score": result.refined.score if result.refined else None,
    }
    return callbacks


def _summary(output: dict[str, Any]) -> str:
    lines = [
        f"params {output['params_before']:,} -> {output['params_after']:,}  "
        f"MACs {output['macs_before']:,} -> {output['macs_after']:,}",
    ]
    if "accuracy_after" in output:
        lines.append(
            f"test top-1 {100 * output['accuracy_before']:.2f}% -> {100 * output['accuracy_after']:.2f}%"
        )
    if output["skipped_layers"]:
        lines.append(f"left unpruned (unsupported pattern): {', '.join(output['skipped_layers'])}")
    if output["output"]:
        lines.append(f"-> {output['output']}")
    return "\n".join(lines)
