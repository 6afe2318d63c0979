"""sweep_unstructured: accuracy, size and latency over prune amounts, per scope, post-training and aware."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.export.storage import compressed_size_report
from prunequant.pruning.unstructured.config import UnstructuredConfig
from prunequant.pruning.unstructured.recipe import prune_and_finetune
from prunequant.pruning.unstructured.timing import interleaved_latency
from prunequant.training import TrainConfig, evaluate
from prunequant.validation import check_choice, check_fraction

SWEEP_COLUMNS = (
    "scope",
    "mode",
    "amount",
    "sparsity",
    "top1",
    "top5",
    "baseline_top1",
    "nonzero_params",
    "params",
    "compressed_bytes",
    "latency_ratio",
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
    example_input: torch.Tensor | None = None,
    latency_rounds: int = 10,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per (scope, mode, amount); `model` itself is left untouched (each row prunes a copy).

    mode "post" prunes the trained model; "aware" (when `finetune` has epochs or `refine_epochs` > 0)
    also fine-tunes with the masks held, then refines at LR * refine_factor. `prune` supplies include_bias,
    exclude, overrides and keep_first_last. Rows hold top-1/top-5 on `eval_loader`, nonzero parameter
    count, the compressed container size in bytes, and, with `example_input`, the eager latency ratio to
    the unpruned model measured interleaved (1.0 = no speedup). `on_row` sees each row as it is done.
    """
    amounts = [check_fraction("amount", amount) for amount in amounts]
    if not amounts:
        raise ConfigError("give at least one amount to sweep, e.g. 0,0.25,0.5")
    for scope in scopes:
        check_choice("scope", scope, ("global", "layer"))
    base = prune if prune is not None else UnstructuredConfig(0.0)
    aware = finetune is not None and (finetune.epochs > 0 or refine_epochs > 0)
    modes = ("post", "aware") if aware else ("post",)
    baseline_top1 = evaluate(model, eval_loader).top1
    rows = []
    for scope in scopes:
        for mode in modes:
            for amount in amounts:
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
                )
                row = _measure(candidate, model, eval_loader, example_input, latency_rounds)
                row.update(
                    scope=scope,
                    mode=mode,
                    amount=amount,
                    sparsity=result.prune.sparsity,
                    baseline_top1=baseline_top1,
                )
                rows.append({key: row[key] for key in SWEEP_COLUMNS})
                if on_row is not None:
                    on_row(rows[-1])
    return rows


def _measure(
    candidate: nn.Module,
    baseline: nn.Module,
    eval_loader: Iterable,
    example_input: torch.Tensor | None,
    latency_rounds: int,
) -> dict[str, Any]:
    scores = evaluate(candidate, eval_loader)
    params = [p.detach() for p in candidate.parameters()]
    row: dict[str, Any] = {
        "top1": scores.top1,
        "top5": scores.top5,
        "params": sum(p.numel() for p in params),
        "nonzero_params": sum(int(torch.count_nonzero(p)) for p in params),
        "compressed_bytes": compressed_size_report(candidate)["file_bytes"],
        "latency_ratio": None,
    }
    if example_input is not None:
        candidate.eval()
        baseline.eval()
        timing = interleaved_latency(
            lambda: candidate(example_input), lambda: baseline(example_input), rounds=latency_rounds
        )
        row["latency_ratio"] = timing["ratio"]
    return row
