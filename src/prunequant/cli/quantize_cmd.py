"""`prunequant quantize`: uniform N-bit quantization, post-training (ptq) or aware (qat), or a bit sweep."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from prunequant.cli.common import load_data, print_human, resolve_model, resolve_task
from prunequant.cli.numbers import nonneg_int, positive_float, positive_int, ranged
from prunequant.cli.options import (
    add_alias,
    add_common,
    add_data_options,
    add_format_option,
    add_model_source,
)
from prunequant.cli.paths import declare_paths, written_together
from prunequant.export.storage.quantized_codec import save_quantized
from prunequant.models import save_checkpoint
from prunequant.quantization import (
    CALIBRATIONS,
    QuantConfig,
    float_layers,
    memory_report,
    parse_bits,
    quantization_aware_finetune,
    quantize,
    sweep_quantization,
    zero_share,
)
from prunequant.quantization.sweep import MODES
from prunequant.seeding import seed_everything
from prunequant.tasks import MetricSpec, default_task
from prunequant.training import TrainConfig, evaluate

_LAYER_BITS = re.compile(r"^(?:w(\d+))?(?:a(\d+))?$")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quantize", help="quantize weights and activations to 2..16 bits (PTQ or QAT)", description=__doc__
    )
    add_model_source(parser)
    add_data_options(parser)
    group = parser.add_argument_group("quantization")
    group.add_argument(
        "--w-bits", type=_bits, default=8, help="weight bits 2..16, or 'none' for float (default 8)"
    )
    group.add_argument(
        "--a-bits", type=_bits, default=8, help="activation bits 2..16, or 'none' for float (default 8)"
    )
    group.add_argument(
        "--mode",
        choices=("ptq", "qat"),
        help="post-training or aware (default ptq; a --bits sweep runs both unless --mode is given)",
    )
    group.add_argument(
        "--calib-batches", type=positive_int, default=32, help="calibration batches (default 32)"
    )
    group.add_argument(
        "--calibration", choices=CALIBRATIONS, default="minmax", help="activation ranges (default minmax)"
    )
    group.add_argument(
        "--percentile",
        type=ranged(float, 0.0, 100.0, open_low=True),
        default=99.99,
        help="percentile calibration (default 99.99)",
    )
    group.add_argument(
        "--ema-decay",
        type=ranged(float, 0.0, 1.0, open_low=True, open_high=True),
        help="EMA decay for --calibration ema (default: Alg. 2 average)",
    )
    group.add_argument(
        "--per-tensor", action="store_true", help="one weight scale per tensor, not per channel"
    )
    group.add_argument(
        "--asymmetric-weights", action="store_true", help="weights with a zero point (not ONNX S8)"
    )
    group.add_argument("--pow2-scales", action="store_true", help="round scales up to powers of two")
    group.add_argument("--fold-bn", action="store_true", help="fold Conv2d+BatchNorm2d first (BN frozen)")
    group.add_argument("--no-input", action="store_true", help="leave the model input in float")
    group.add_argument(
        "--no-residuals",
        action="store_true",
        help="quantize activations only after ReLUs (and the model input): residual branches, block outputs "
        "and the layers reading sums stay float, so those convs do not fuse into int8 kernels",
    )
    group.add_argument(
        "--exclude", action="append", default=[], metavar="PATTERN", help="keep matching layers float"
    )
    group.add_argument(
        "--layer-bits",
        action="append",
        default=[],
        type=_layer_bits,
        metavar="PATTERN=wBaB",
        help="mixed precision, e.g. 'layer3.*=w4' or 'fc=w8a8' (repeatable)",
    )
    train = parser.add_argument_group("fine-tuning (--mode qat, and the aware rows of a sweep)")
    epochs = train.add_argument(
        "--finetune-epochs", type=nonneg_int, default=1, help="fine-tune epochs at --lr (default 1)"
    )
    add_alias(train, epochs, "--epochs")
    train.add_argument(
        "--lr", type=positive_float, default=0.01, help="fine-tune learning rate (default 0.01)"
    )
    train.add_argument(
        "--refine-epochs", type=nonneg_int, help="refine epochs at lr * factor (default --finetune-epochs)"
    )
    train.add_argument(
        "--refine-lr-factor", type=positive_float, default=0.1, help="refine LR factor (seeds: 0.1)"
    )
    train.add_argument("--max-batches", type=nonneg_int, default=0, help="cap batches per epoch (0: all)")
    sweep = parser.add_argument_group("sweep")
    sweep.add_argument("--bits", help="sweep these widths, e.g. 16,14,12,10,8,6,4,fp16,bf16")
    sweep.add_argument(
        "--sweep-dir", help="write the sweep's CSV, markdown table, plot and packed files here"
    )
    add_format_option(sweep)
    out = parser.add_argument_group("output")
    out.add_argument("-o", "--output", help="quantized checkpoint to write (weights_only loadable)")
    out.add_argument("--packed", help="also write the bit-packed container here (.pqz)")
    add_common(parser)
    declare_paths(
        parser,
        inputs={"checkpoint": "file", "data_dir": "dir"},
        outputs={"output": "file", "packed": "file", "sweep_dir": "dir"},
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = QuantConfig(
        w_bits=args.w_bits,
        a_bits=args.a_bits,
        per_channel=not args.per_tensor,
        symmetric_weights=not args.asymmetric_weights,
        calibration=args.calibration,
        percentile=args.percentile,
        ema_decay=args.ema_decay,
        pow2_scale=args.pow2_scales,
        fold_bn=args.fold_bn,
        quantize_input=not args.no_input,
        quantize_residuals=not args.no_residuals,
        overrides=dict(args.layer_bits),
        exclude=tuple(args.exclude),
    )
    bits = parse_bits(args.bits.split(",")) if args.bits is not None else None
    train_config = TrainConfig(
        epochs=args.finetune_epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        max_batches_per_epoch=args.max_batches,
    )
    seed_everything(args.seed)
    model, meta = resolve_model(args)
    _, loaders = load_data(args, args.dataset or meta.get("dataset"))
    task = resolve_task(args) or default_task()
    if bits is not None:
        return _sweep(args, model, config, bits, loaders, train_config, task)
    args.mode = args.mode or "ptq"
    qmodel = quantize(model, config, loaders.train, calib_batches=args.calib_batches, task=task)
    if args.mode == "qat":
        quantization_aware_finetune(
            qmodel,
            loaders.train,
            loaders.val,
            train_config,
            refine_epochs=args.refine_epochs,
            refine_factor=args.refine_lr_factor,
            calib_batches=args.calib_batches,
            task=task,
        )
    spec = task.primary_metric
    quantized = evaluate(qmodel, loaders.test, task)
    baseline, score = evaluate(model, loaders.test, task).score, quantized.score
    density = score if spec.higher_is_better and spec.unit == "%" else None  # PD: a fraction metric only
    memory = memory_report(qmodel, task.inputs(next(iter(loaders.test))), accuracy=density)
    shares = zero_share(qmodel) if config.w_bits is not None else None
    meta = _quantized_meta(meta, config, args.mode, {spec.name: score})
    output = {
        "w_bits": config.w_bits,
        "a_bits": config.a_bits,
        "mode": args.mode,
        "per_channel": config.per_channel,
        "pow2_scale": config.pow2_scale,
        "fold_bn": config.fold_bn,
        "quantize_residuals": config.quantize_residuals,
        "calibration": config.calibration,
        "zero_share": shares.share if shares else 0.0,
        "zero_share_of_nonzero": shares.share_of_nonzero if shares else 0.0,
        "weight_mb": memory.weight_mb,
        "activation_mb": memory.activation_mb,
        "pd": memory.pd,
        "metric": spec.name,
        spec.name: score,
        f"baseline_{spec.name}": baseline,
        "output": args.output,
        "packed": args.packed,
        "packed_bytes": None,
        "warnings": list(quantized.warnings),
        "float_layers": float_layers(qmodel),
    }
    with written_together(args.output, args.packed):  # both files, or neither new one
        if args.output:
            save_checkpoint(qmodel, args.output, **meta)
        if args.packed:
            output["packed_bytes"] = save_quantized(qmodel, args.packed, **meta)
    print_human(args, _summary_line(output, spec))
    return output


def _sweep(args, model, config, bits, loaders, train_config, task) -> dict[str, Any]:
    from prunequant.cli.tables import print_table, rows_table
    from prunequant.sweep_output import sweep_paths

    packed_dir = Path(args.sweep_dir) / "packed" if args.sweep_dir else None
    rows = sweep_quantization(
        model,
        loaders.train,
        loaders.test,
        bits,
        config=config,
        modes=("post",) if args.mode == "ptq" else MODES,
        train_config=train_config,
        refine_epochs=args.refine_epochs,
        calib_batches=args.calib_batches,
        val_loader=loaders.val,
        task=task,
        pack=(lambda qmodel, label: save_quantized(qmodel, packed_dir / f"{label}.pqz"))
        if packed_dir
        else None,
        sweep_dir=args.sweep_dir,
    )
    paths = sweep_paths(args.sweep_dir, "quant_sweep") if args.sweep_dir else {}
    print_table(args, rows_table(rows, "quantization sweep"))
    return {"rows": rows, "outputs": paths}


def _quantized_meta(
    meta: dict[str, Any], config: QuantConfig, mode: str, metrics: dict[str, float]
) -> dict[str, Any]:
    meta = dict(meta)
    previous = meta.pop("metrics", None)
    if previous is not None:
        meta["float_metrics"] = previous
    meta["metrics"] = metrics
    meta["quantization"] = {"mode": mode, **config.to_dict()}
    return meta


def _summary_line(output: dict[str, Any], spec: MetricSpec) -> str:
    pd = "n/a" if output["pd"] is None else f"{output['pd']:.2f}"
    text = (
        f"W{output['w_bits'] or 'f'}A{output['a_bits'] or 'f'} {output['mode']}: {spec.label or spec.name} "
        f"{spec.format(output['baseline_' + spec.name])} -> {spec.format(output[spec.name])}  "
        f"zero share {100 * output['zero_share']:.2f}%  weights {output['weight_mb']:.3f} Mb  "
        f"activations {output['activation_mb']:.3f} Mb  PD {pd}"
    )
    for key in ("output", "packed"):
        text += f"  -> {output[key]}" if output[key] else ""
    return "\n".join([text, *(f"warning: {line}" for line in output["warnings"])])


def _bits(text: str) -> int | None:
    if text.strip().lower() in ("none", "float"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer 2..16 or 'none', got {text!r}") from None


def _layer_bits(text: str) -> tuple[str, dict[str, int]]:
    pattern, sep, spec = text.rpartition("=")
    match = _LAYER_BITS.match(spec.strip().lower())
    if not sep or not pattern or match is None or not any(match.groups()):
        raise argparse.ArgumentTypeError(
            f"expected PATTERN=wBaB like 'layer3.*=w4' or 'fc=w8a8', got {text!r}"
        )
    names = ("w_bits", "a_bits")
    return pattern, {name: int(value) for name, value in zip(names, match.groups(), strict=True) if value}
