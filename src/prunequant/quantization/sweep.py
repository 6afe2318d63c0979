"""sweep_quantization: the task's primary metric, zero share, memory and PD over bit widths, post-training
and aware (seed 000 Figs. 1-2 and Table II; seed 003 Table 4)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.quantization.config import QuantConfig, check_bits
from prunequant.quantization.float_cast import FLOAT_FORMATS, cast_weights
from prunequant.quantization.memory import memory_report
from prunequant.quantization.qat import quantization_aware_finetune
from prunequant.quantization.quantize import quantize
from prunequant.quantization.sweep_report import quant_sweep_files
from prunequant.quantization.zero_share import ZeroShare, count_zeros, zero_share
from prunequant.sweep_output import baseline_column
from prunequant.tasks import Task, default_task
from prunequant.timing import BASELINE_SPEED, FAKE_QUANT_SPEED, FLOAT_CAST_SPEED
from prunequant.training import TrainConfig, evaluate


def sweep_columns(task: Task | None = None) -> tuple[str, ...]:
    """Row keys of sweep_quantization: the task's primary metric and `baseline_<primary>` among them."""
    task = task or default_task()
    return (
        "bits",
        "mode",
        task.primary,
        baseline_column(task),
        "zero_share",
        "zero_share_of_nonzero",
        "weight_mb",
        "activation_mb",
        "pd",
        "packed_bytes",
        "speed",
    )


SWEEP_COLUMNS = sweep_columns()
"""The columns for the default (classification) task."""
MODES = ("post", "aware")
Packer = Callable[[nn.Module, str], int]
"""pack(qmodel, label) -> bytes of its packed file (e.g. a lambda around export's save_quantized)."""


def parse_bits(items: Iterable[str | int]) -> list[int | str]:
    """Bit widths for a sweep: integers 2..16 and the float formats 'fp16' / 'bf16'."""
    parsed: list[int | str] = []
    for item in items:
        text = str(item).strip().lower()
        if text in FLOAT_FORMATS:
            parsed.append(text)
            continue
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"bits must be integers in 2..16 or fp16/bf16, got {item!r}") from None
        parsed.append(check_bits("bits", value))
    if not parsed:
        raise ConfigError("give at least one bit width, e.g. 16,14,12,10,8,6,4")
    return parsed


def sweep_quantization(
    model: nn.Module,
    train_loader: Iterable,
    eval_loader: Iterable,
    bits: Sequence[int | str],
    *,
    config: QuantConfig | None = None,
    modes: Sequence[str] = MODES,
    train_config: TrainConfig | None = None,
    refine_epochs: int | None = None,
    calib_batches: int = 32,
    val_loader: Iterable | None = None,
    pack: Packer | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    task: Task | None = None,
    sweep_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Rows (`sweep_columns(task)`) for the float baseline, then each bit width and mode; `model` is kept.

    For an integer width b, `config` (default QuantConfig()) is used with w_bits = b and a_bits = b (a_bits
    stays None when config.a_bits is None: weights only). "post" calibrates on `calib_batches` training
    batches (PTQ); "aware" continues from that model with quantization_aware_finetune(train_config,
    refine_epochs), validating on `val_loader` (default `eval_loader`). "fp16"/"bf16" round the weights
    through that format (post only; an accuracy variant). The task's primary metric (`task`, default
    classification) is measured on `eval_loader`, in the column named after it; memory on the inputs of
    its first batch; `pack` adds the packed file size. PD (accuracy per megabit) needs an accuracy: it is
    None when the primary metric is not a higher-is-better share ("%" unit). `speed` labels each row
    instead of timing it: fake quantization in eager torch and float casts have no deployable speed
    (export to int8 ONNX or PT2E and time that with `bench`). `modes=("post",)` runs no aware training
    at all. With `sweep_dir`, `quant_sweep.csv/.md/.png` are rewritten after every row, so an interrupted
    sweep (Ctrl-C) leaves valid files marked "partial: K of N levels".
    """
    bits = parse_bits(bits)
    if not modes or any(mode not in MODES for mode in modes):
        raise ConfigError(f"modes must be a non-empty subset of {', '.join(MODES)}, got {list(modes)}")
    modes = [mode for mode in MODES if mode in modes]  # "aware" continues from the "post" model
    if "aware" in modes and train_config is None:
        raise ConfigError("the aware mode needs train_config (epochs and lr of quantization-aware training)")
    config = config or QuantConfig()
    task = task or default_task()
    metric = task.primary_metric
    is_accuracy = metric.unit == "%" and metric.higher_is_better
    example = task.inputs(next(iter(eval_loader)))
    rows: list[dict[str, Any]] = []
    total = 1 + sum(1 if isinstance(width, str) else len(modes) for width in bits)
    files = quant_sweep_files(sweep_dir, total, task=task) if sweep_dir else None

    def emit(variant: nn.Module, label: str, mode: str, shares: ZeroShare, packed: int | None = None) -> None:
        score = evaluate(variant, eval_loader, task).score
        w_bits = 16 if label in FLOAT_FORMATS else None
        memory = memory_report(variant, example, w_bits=w_bits, accuracy=score if is_accuracy else None)
        row = {
            "bits": label,
            "mode": mode,
            metric.name: score,
            baseline_column(task): rows[0][metric.name] if rows else score,
            "zero_share": shares.share,
            "zero_share_of_nonzero": shares.share_of_nonzero,
            "weight_mb": memory.weight_mb,
            "activation_mb": memory.activation_mb,
            "pd": memory.pd,
            "packed_bytes": packed,
            "speed": _speed_label(label),
        }
        rows.append(row)
        if on_row is not None:
            on_row(row)
        if files is not None:
            files.add(row)

    with files.interruptible() if files else nullcontext():
        emit(model, "fp32", "baseline", ZeroShare(0, 0, 0))
        for width in bits:
            if isinstance(width, str):
                variant = cast_weights(model, width)
                emit(variant, width, "post", _cast_zero_share(model, variant))
                continue
            layer_bits = {"w_bits": width, "a_bits": None if config.a_bits is None else width}
            qmodel = quantize(
                model, replace(config, **layer_bits), train_loader, calib_batches=calib_batches, task=task
            )
            for mode in modes:
                if mode == "aware":
                    quantization_aware_finetune(
                        qmodel,
                        train_loader,
                        val_loader or eval_loader,
                        train_config,
                        refine_epochs=refine_epochs,
                        task=task,
                    )
                packed = pack(qmodel, f"{mode}-w{width}") if pack is not None else None
                emit(qmodel, str(width), mode, zero_share(qmodel), packed)
    return rows


def _speed_label(label: str) -> str:
    if label == "fp32":
        return BASELINE_SPEED
    return FLOAT_CAST_SPEED if label in FLOAT_FORMATS else FAKE_QUANT_SPEED


@torch.no_grad()
def _cast_zero_share(model: nn.Module, variant: nn.Module) -> ZeroShare:
    """Zeros that a float cast creates in the Conv2d / Linear weights."""
    return count_zeros(
        (original.weight, cast.weight)
        for original, cast in zip(model.modules(), variant.modules(), strict=True)
        if isinstance(original, (nn.Conv2d, nn.Linear))
    )
