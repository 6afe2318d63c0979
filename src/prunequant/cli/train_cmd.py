"""`prunequant train`: train a zoo or user model on a dataset and save a checkpoint."""

from __future__ import annotations

import argparse

from prunequant.cli.common import add_common, add_data_options, load_data, print_human
from prunequant.errors import ConfigError
from prunequant.seeding import seed_everything
from prunequant.training import LR_SCHEDULES_HELP, TrainConfig, Trainer, evaluate


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model and save a checkpoint", description=__doc__)
    parser.add_argument(
        "--model", required=True, help="zoo name (e.g. lenet5, resnet20) or 'pkg.module:factory'"
    )
    add_data_options(parser, required=True)
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate (default 0.05)")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="optimizer (default sgd)")
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="L2 weight decay (default 5e-4)")
    parser.add_argument("--schedule", default="cosine", help=LR_SCHEDULES_HELP)
    parser.add_argument("--patience", type=int, default=0, help="early-stopping patience in epochs (0: off)")
    parser.add_argument("-o", "--output", required=True, help="checkpoint file to write")
    add_common(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> dict:
    from prunequant.models import build_from_spec, save_checkpoint

    config = TrainConfig(
        epochs=args.epochs,
        lr=args.lr,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        lr_schedule=args.schedule,
        batch_size=args.batch_size,
        early_stopping_patience=args.patience,
    )
    seed_everything(args.seed)
    splits, loaders = load_data(args)
    channels, _, size = splits.input_shape
    kwargs = {"num_classes": splits.num_classes, "in_channels": channels, "input_size": size}
    model = build_from_spec(args.model, **kwargs)
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"model {args.model!r} has no trainable parameters")
    history = Trainer(model, loaders.train, loaders.val, config).fit()
    test = evaluate(model, loaders.test)
    metrics = {**test.to_dict(), "val_top1": history[-1].get("val_top1") if history else None}
    path = save_checkpoint(
        model,
        args.output,
        arch=args.model,
        arch_kwargs=kwargs,
        input_shape=list(splits.input_shape),
        dataset=splits.name,
        metrics=metrics,
        train=config.to_dict(),
        seed=args.seed,
    )
    print_human(args, f"test top-1 {100 * test.top1:.2f}%  top-5 {100 * test.top5:.2f}%  -> {path}")
    return {"output": str(path), **metrics, "epochs": len(history), "history": history}
