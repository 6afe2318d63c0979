"""`prunequant export`: write a checkpoint as ONNX (fp32, or int8 QDQ) or, with --format pt2e, as a
torch-native int8 artifact (.pt2); with --dataset, check parity."""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import torch

from prunequant.cli.common import (
    example_input,
    load_data,
    print_human,
    resolve_model,
    resolve_task,
)
from prunequant.cli.numbers import nonneg_int, positive_int
from prunequant.cli.options import add_common, add_data_options, add_model_source
from prunequant.cli.paths import declare_paths
from prunequant.errors import ConfigError, ExportError
from prunequant.export.onnx_fp32 import EXPORTERS, export_onnx
from prunequant.export.onnx_int8 import METHODS, NOT_QUANTIZED, OTHER_BITS, ExportResult, export_int8
from prunequant.export.ort_quantizer import OrtQuantConfig
from prunequant.export.parity import parity
from prunequant.quantization import is_quantized


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export to ONNX (fp32 or int8) or to torch-native int8 (.pt2)", description=__doc__
    )
    add_model_source(parser)
    add_data_options(
        parser,
        limit_help="quick runs: at most this many training samples (calibration); the test split used by "
        "the parity check shrinks in proportion",
    )
    group = parser.add_argument_group("int8")
    group.add_argument("--int8", action="store_true", help="write an int8 QDQ graph")
    group.add_argument(
        "--int8-method",
        choices=("auto", *METHODS),
        default="auto",
        help="ours: the checkpoint's own scales (needs `prunequant quantize`); ort: onnxruntime's quantizer "
        "calibrated on --dataset; auto: ours if quantized, else ort (default)",
    )
    group.add_argument(
        "--other-bits",
        choices=OTHER_BITS,
        default="dequantize",
        help="bit widths other than 8: run as exact float, or clamp to int8 (default dequantize)",
    )
    group.add_argument(
        "--calib-batches", type=positive_int, default=8, help="ort / pt2e calibration batches (default 8)"
    )
    group.add_argument("--ort-per-tensor", action="store_true", help="ort: per-tensor weight scales")
    group.add_argument(
        "--ort-activations",
        choices=("u8", "s8"),
        default="u8",
        help="ort: activation type (default u8, the fastest with s8 weights)",
    )
    check = parser.add_argument_group("parity check (with --dataset)")
    check.add_argument(
        "--parity-batches",
        type=nonneg_int,
        default=0,
        help="test batches for the parity check (default 0: the whole test split)",
    )
    check.add_argument(
        "--threads",
        type=positive_int,
        help="threads for the parity check (default: all for onnxruntime, 1 for pt2e)",
    )
    output = parser.add_argument_group("output")
    output.add_argument("-o", "--output", required=True, help="the .onnx / .pt2 file to write (atomically)")
    output.add_argument(
        "--format",
        choices=("onnx", "pt2e"),
        default="onnx",
        help="onnx, or pt2e: torch-native int8 (.pt2, PT2E + inductor; needs --dataset) (default onnx)",
    )
    output.add_argument("--exporter", choices=EXPORTERS, default="auto", help="torch exporter (default auto)")
    add_common(parser)
    declare_paths(parser, inputs={"checkpoint": "file", "data_dir": "dir"}, outputs={"output": "file"})
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    task = resolve_task(args)
    model, meta = resolve_model(args)
    example = example_input(meta, 1)
    loaders = load_data(args)[1] if args.dataset else None
    if args.format == "pt2e":
        from prunequant.cli.export_pt2e import export_pt2e

        return export_pt2e(args, model, example, task, loaders)
    quantized = is_quantized(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _export(args, model, example, quantized, loaders)
    notes = [str(w.message) for w in caught if w.category is UserWarning]
    output: dict[str, Any] = {"format": args.format, **result.to_dict(), "warnings": notes}
    if loaders is not None:
        output["parity"] = parity(
            model,
            result.output,
            loaders.test,
            task=task,
            max_batches=args.parity_batches,
            threads=args.threads,
        ).to_dict()
    print_human(args, _summary(output))
    return output


def _export(
    args: argparse.Namespace, model: torch.nn.Module, example: torch.Tensor, quantized: bool, loaders: Any
) -> ExportResult:
    if not args.int8:
        if quantized:
            raise ConfigError("the checkpoint is quantized; add --int8 to export it with its own scales")
        path = export_onnx(model, args.output, example, exporter=args.exporter)
        return ExportResult(str(path), path.stat().st_size, "fp32", "fp32")
    method = args.int8_method
    if method == "auto":
        method = "ours" if quantized or loaders is None else "ort"
    if method == "ours" and not quantized:
        raise ExportError(NOT_QUANTIZED)
    if method == "ort" and loaders is None:
        raise ExportError(
            "--int8-method ort calibrates with onnxruntime: pass --dataset (e.g. fashion-mnist)"
        )
    config = OrtQuantConfig(
        activations=args.ort_activations,
        per_channel=not args.ort_per_tensor,
        calib_batches=args.calib_batches,
    )
    return export_int8(
        model,
        args.output,
        example,
        method,
        calib_loader=loaders.train if loaders is not None else None,
        ort_config=config,
        other_bits=args.other_bits,
    )


def _summary(output: dict[str, Any]) -> str:
    size_mb = output["bytes"] / 1e6
    line = f"wrote {output['output']} ({size_mb:.2f} MB, {output['precision']}, {output['method']})"
    report = output.get("parity")
    if report:
        line += (
            f"\nparity on {report['n']} test samples: top-1 agreement {100 * report['agreement']:.2f}%"
            f"\ntop-1 torch {100 * report['top1_torch']:.2f}%, onnxruntime {100 * report['top1_onnx']:.2f}%"
            f"\nmax |logit diff| {report['max_abs_logit_diff']:.3g}, mean {report['mean_abs_logit_diff']:.3g}"
        )
    return "\n".join([line, *(f"warning: {text}" for text in output["warnings"])])
