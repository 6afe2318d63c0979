"""`prunequant export --format pt2e`: the torch-native int8 artifact (.pt2), calibrated on --dataset, and its
parity (compiled with inductor in a fresh process) against the checkpoint on the test split."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from torch import nn

from prunequant.cli.common import print_human
from prunequant.errors import ConfigError
from prunequant.export.pt2e_int8 import export_pt2e_int8
from prunequant.export.pt2e_runner import run_pt2e
from prunequant.tasks import Inputs


def export_pt2e(
    args: argparse.Namespace, model: nn.Module, example: Inputs, task: Any, loaders: Any
) -> dict[str, Any]:
    """Write the .pt2 (PT2E int8, X86InductorQuantizer) and check its parity; the command's JSON object."""
    if loaders is None:
        raise ConfigError("--format pt2e calibrates on data: pass --dataset (e.g. fashion-mnist)")
    ignored = [
        flag
        for flag, used in (
            ("--exporter", args.exporter != "auto"),
            ("--int8-method", args.int8_method != "auto"),
            ("--other-bits", args.other_bits != "dequantize"),
            ("--ort-per-tensor", args.ort_per_tensor),
            ("--ort-activations", args.ort_activations != "u8"),
        )
        if used
    ]
    if ignored:
        raise ConfigError(f"ONNX options that --format pt2e does not use: {', '.join(ignored)}")
    if Path(args.output).suffix != ".pt2":
        raise ConfigError(f"--format pt2e writes a torch.export file: give -o NAME.pt2, not {args.output}")
    result = export_pt2e_int8(
        model,
        args.output,
        example,
        loaders.train,
        task=task,
        calib_batches=args.calib_batches,
    )
    checked = run_pt2e(
        result.output,
        None,
        example,
        threads=args.threads or 1,
        parity_loader=loaders.test,
        parity_batches=args.parity_batches,
        reference=model,
        task=task,
    )
    output = {"format": "pt2e", **result.to_dict(), "parity": checked.parity, "warnings": checked.notes}
    print_human(args, _summary(output))
    return output


def _summary(output: dict[str, Any]) -> str:
    parity = output["parity"] or {}
    lines = [
        f"wrote {output['output']} ({output['bytes'] / 1e6:.2f} MB, int8, {output['runtime']})",
        f"{output['layers']}; {output['source']}",
        f"parity vs the checkpoint (compiled): max |diff| {parity.get('max_abs_diff', float('nan')):.3g}, "
        f"mean {parity.get('mean_abs_diff', float('nan')):.3g}"
        + (f", agreement {100 * parity['agreement']:.2f}%" if "agreement" in parity else ""),
    ]
    lines += [f"float: {name} ({reason})" for name, reason in output["float_layers"].items()]
    return "\n".join([*lines, *(f"warning: {text}" for text in output["warnings"])])
