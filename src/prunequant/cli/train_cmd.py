"""`prunequant train`: train a zoo or user model on a dataset and save a checkpoint."""

from __future__ import annotations

import argparse

import torch

from prunequant.cli.common import load_data, print_human, resolve_task, shape_spec
from prunequant.cli.eval_cmd import metrics_line
from prunequant.cli.numbers import nonneg_float, nonneg_int, positive_float, positive_int
from prunequant.cli.options import (
    add_alias,
    add_common,
    add_data_options,
    add_input_shape,
    add_model_kwargs,
    add_task_option,
    model_group,
)
from prunequant.cli.paths import declare_paths
from prunequant.errors import ConfigError
from prunequant.seeding import seed_everything
from prunequant.training import LR_SCHEDULES_HELP, TrainConfig, Trainer, evaluate


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model and save a checkpoint", description=__doc__)
    model = model_group(parser)
    model.add_argument(
        "--model", required=True, help="zoo name (e.g. lenet5, resnet20) or 'pkg.module:factory'"
    )
    add_model_kwargs(model)
    add_input_shape(model)
    add_task_option(model)
    add_data_options(parser, required=True)
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=positive_int, default=10, help="training epochs (default 10)")
    train.add_argument("--lr", type=positive_float, default=0.05, help="learning rate (default 0.05)")
    train.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="optimizer (default sgd)")
    train.add_argument(
        "--weight-decay", type=nonneg_float, default=5e-4, help="L2 weight decay (default 5e-4)"
    )
    add_alias(
        train, train.add_argument("--lr-schedule", default="cosine", help=LR_SCHEDULES_HELP), "--schedule"
    )
    train.add_argument(
        "--patience", type=nonneg_int, default=0, help="early-stopping patience in epochs (0: off)"
    )
    output = parser.add_argument_group("output")
    output.add_argument("-o", "--output", required=True, help="checkpoint file to write")
    add_common(parser)
    declare_paths(parser, inputs={"data_dir": "dir"}, outputs={"output": "file"})
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> dict:
    from prunequant.models import build_from_spec, save_checkpoint

    config = TrainConfig(
        epochs=args.epochs,
        lr=args.lr,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        lr_schedule=args.lr_schedule,
        batch_size=args.batch_size,
        early_stopping_patience=args.patience,
    )
    seed_everything(args.seed)
    task = resolve_task(args)
    splits, loaders = load_data(args)
    channels, _, size = splits.input_shape
    kwargs = {
        "num_classes": splits.num_classes,
        "in_channels": channels,
        "input_size": size,
        **args.model_kwargs,
    }
    model = build_from_spec(args.model, **kwargs)
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"model {args.model!r} has no trainable parameters")
    history = Trainer(model, loaders.train, loaders.val, config, task=task).fit()
    diverged = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if diverged:
        raise ConfigError(
            f"training diverged: parameter {diverged[0]} holds NaN/inf after training, nothing was written; "
            "lower --lr or --weight-decay"
        )
    test = evaluate(model, loaders.test, task)
    primary = test.primary
    metrics = {**test.to_dict(), f"val_{primary}": history[-1].get(f"val_{primary}") if history else None}
    shape = shape_spec(args.input_shape) or list(splits.input_shape)
    path = save_checkpoint(
        model,
        args.output,
        arch=args.model,
        arch_kwargs=kwargs,
        input_shape=shape,
        dataset=splits.name,
        metrics=metrics,
        train=config.to_dict(),
        seed=args.seed,
        **({"task": args.task} if args.task else {}),
    )
    print_human(args, f"test {metrics_line(task, test.metrics)}  -> {path}")
    return {"output": str(path), **metrics, "epochs": len(history), "history": history}
