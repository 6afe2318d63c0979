"""sweep_unstructured: the task's metrics, size and latency over prune amounts, per scope, post and aware."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.export.storage import compressed_size_report
from prunequant.pruning.unstructured.config import UnstructuredConfig
from prunequant.pruning.unstructured.recipe import prune_and_finetune
from prunequant.pruning.unstructured.sweep_report import sweep_files
from prunequant.sweep_output import baseline_column
from prunequant.tasks import Inputs, Task, default_task, run_model
from prunequant.timing import NO_SPEED_GAIN_DENSE, compare
from prunequant.training import TrainConfig, evaluate
from prunequant.validation import check_choice, check_fraction


def sweep_columns(task: Task | None = None) -> tuple[str, ...]:
    """Row keys of sweep_unstructured: every metric of `task` and `baseline_<primary>` among them."""
    task = task or default_task()
    metrics = tuple(spec.name for spec in task.metrics)
    return (
        "scope",
        "mode",
        "amount",
        "sparsity",
        *metrics,
        baseline_column(task),
        "nonzero_params",
        "params",
        "compressed_bytes",
        "speed",
        "latency_ms",
        "latency_p10_ms",
        "latency_p90_ms",
    )


def sweep_unstructured(
    model: nn.Module,
    eval_loader: Iterable,
    amounts: Sequence[float],
    *,
    scopes: Sequence[str] = ("global", "layer"),
    prune: UnstructuredConfig | None = None,
    train_loader: Iterable | None = None,
    val_loader: Iterable | None = None,
    finetune: TrainConfig | None = None,
    refine_epochs: int = 0,
    refine_factor: float = 0.1,
    example_input: Inputs | None = None,
    latency_rounds: int = 10,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    task: Task | None = None,
    sweep_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """One row per (scope, mode, amount); `model` itself is left untouched (each row prunes a copy).

    mode "post" prunes the trained model; "aware" (when `finetune` has epochs or `refine_epochs` > 0)
    also fine-tunes with the masks held, then refines at LR * refine_factor. `prune` supplies include_bias,
    exclude, overrides and keep_first_last.

    Parameters
    ----------
    example_input:
        A tensor, tuple or dict of tensors; with it, each row gets the eager latency (median, p10, p90)
        of the masked model, timed interleaved with the unpruned one by prunequant.timing. The `speed`
        column says "no speed gain: dense kernels" either way: masked zeros cost the same dense work.
    on_row:
        Sees each row as it is done.
    task:
        Loss and metrics (default classification).
    sweep_dir:
        Write `sweep.csv`, `sweep.md` and `sweep.png` here after every row, so an interrupted sweep
        (Ctrl-C) leaves valid files marked "partial: K of N levels".

    Returns
    -------
    Rows with the keys of `sweep_columns(task)`: every metric of the task on `eval_loader`, the baseline's
    primary metric, nonzero and total parameter counts, the compressed container size in bytes, the
    speed label and the latencies (None without `example_input`).
    """
    amounts = [check_fraction("amount", amount) for amount in amounts]
    if not amounts:
        raise ConfigError("give at least one amount to sweep, e.g. 0,0.25,0.5")
    for scope in scopes:
        check_choice("scope", scope, ("global", "layer"))
    base = prune if prune is not None else UnstructuredConfig(0.0)
    aware = finetune is not None and (finetune.epochs > 0 or refine_epochs > 0)
    modes = ("post", "aware") if aware else ("post",)
    task = task or default_task()
    columns = sweep_columns(task)
    baseline_score = evaluate(model, eval_loader, task).score
    rows: list[dict[str, Any]] = []
    files = sweep_files(sweep_dir, len(scopes) * len(modes) * len(amounts), task=task) if sweep_dir else None
    with files.interruptible() if files else nullcontext():
        for scope, mode, amount in itertools.product(scopes, modes, amounts):
            candidate = copy.deepcopy(model)
            config = replace(base, amount=amount, scope=scope)
            result = prune_and_finetune(
                candidate,
                config,
                train_loader,
                val_loader,
                finetune if mode == "aware" else None,
                refine_epochs=refine_epochs if mode == "aware" else 0,
                refine_factor=refine_factor,
                task=task,
            )
            row = _measure(candidate, model, eval_loader, example_input, latency_rounds, task)
            row.update(scope=scope, mode=mode, amount=amount, sparsity=result.prune.sparsity)
            row[baseline_column(task)] = baseline_score
            rows.append({key: row[key] for key in columns})
            if on_row is not None:
                on_row(rows[-1])
            if files is not None:
                files.add(rows[-1])
    return rows


def _measure(
    candidate: nn.Module,
    baseline: nn.Module,
    eval_loader: Iterable,
    example_input: Inputs | None,
    latency_rounds: int,
    task: Task,
) -> dict[str, Any]:
    scores = evaluate(candidate, eval_loader, task)
    params = [p.detach() for p in candidate.parameters()]
    row: dict[str, Any] = {
        **scores.metrics,
        "params": sum(p.numel() for p in params),
        "nonzero_params": sum(int(torch.count_nonzero(p)) for p in params),
        "compressed_bytes": compressed_size_report(candidate)["file_bytes"],
        "speed": NO_SPEED_GAIN_DENSE,
        **dict.fromkeys(("latency_ms", "latency_p10_ms", "latency_p90_ms")),
    }
    if example_input is not None:
        candidate.eval()
        baseline.eval()
        timing = compare(
            {
                "dense": lambda: run_model(baseline, example_input),
                "masked": lambda: run_model(candidate, example_input),
            },
            rounds=latency_rounds,
        )["masked"]
        row.update(latency_ms=timing.median_ms, latency_p10_ms=timing.p10_ms, latency_p90_ms=timing.p90_ms)
    return row
