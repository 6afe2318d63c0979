"""Seed 004's pruning table in the seed's layout (its Tables 1 and 2 together): one row per method and
level with params, MACs, compression, the measured deployed speedup, and the budget metric before and
after the fine-tune.

Rows: the original; the sparsity-trained model (L1 on BN gamma); [slimming] channel levels and
[layer_prune] block counts (before: the level's "as pruned" trial; after: its fine-tuned trial); the
[structured] trials (gamma channels without sparsity training; before: the one-shot trial's evaluation
right after pruning, extra["before_finetune"]).
"""

from __future__ import annotations

import json
from typing import Any

from prunequant.lab.store import NEAR_ZERO, SPARSITY_STAGE, TrialRow, percent
from prunequant.report.cells import (
    DEPLOYED_NOTE,
    Cell,
    Table,
    count,
    deployed_speedup,
    header,
    num,
    outcome,
    pick,
    scored,
    text,
)
from prunequant.report.run_data import RunData

LEVEL_STAGES = {SPARSITY_STAGE: "network slimming", "layer_prune": "layer pruning"}
"""The stages whose levels have an "as pruned" and a fine-tuned trial, and their method names."""
SPARSITY_OP = "bn_sparsity"
NOT_PRUNED = ("n/a: not pruned", None)
NO_BEFORE = {
    "stepwise": "pruned while fine-tuning",
    "layerwise": "pruned while fine-tuning",
    "from-scratch": "none: re-initialised",
}
"""Why a [structured] trial of a schedule has no "before fine-tune" figure."""


def level_text(step: dict[str, Any], row: TrialRow | None) -> str:
    """'30% channels (global)' or '2 blocks: b.1, b.3' (the blocks the finished trial removed)."""
    if step["op"] == "layers":
        removed = (row.extra.get("steps", {}).get("layers", {}) if row and row.status == "done" else {}).get(
            "removed_blocks"
        )
        blocks = f"{step['blocks']} block{'s' * (step['blocks'] > 1)}"
        return f"{blocks}: {', '.join(removed)}" if removed else blocks
    allocation = f" ({step['allocation']})" if "allocation" in step else ""
    return f"{percent(step['amount'])} channels{allocation}"


def size_cells(base: TrialRow, row: TrialRow | None) -> list[Cell]:
    """params, MACs, compression (the original `base`'s params / params) and deployed speedup of a
    finished `row`; '-' for a row without a finished trial."""
    if row is None or row.status != "done":
        return [text("-")] * 4
    params, original = row.get("params"), base.get("params")
    ratio = original / params if params and original else None
    return [count(params), count(row.get("macs")), num(ratio, digits=2, suffix="x"), deployed_speedup(row)]


def finished(*rows: TrialRow | None) -> TrialRow | None:
    """The first of `rows` that is done (the source of a row's size columns), else None."""
    return next((row for row in rows if row is not None and row.status == "done"), None)


def gamma_note(row: TrialRow) -> str:
    """'share of |gamma| < 0.01: 3.1% -> 42.0%' from the sparsity-training trial's statistics."""
    info = row.extra.get("steps", {})
    before, after = info.get("bn_gamma_before"), info.get("bn_gamma_after")
    if not before or not after:
        return ""
    return (
        f"; |γ| < {NEAR_ZERO:g}: {100 * before['near_zero_share']:.1f}% -> "
        f"{100 * after['near_zero_share']:.1f}% of {after['channels']} channels"
    )


def level_rows(data: RunData, base: TrialRow, stage: str) -> list[list[Cell]]:
    """One row per level of a [slimming] / [layer_prune] stage (the sparsity-training trial excluded)."""
    groups: dict[str, list[TrialRow]] = {}
    for row in data.stage(stage, done=False):
        steps = row.config.get("steps") or []
        if steps and steps[0]["op"] != SPARSITY_OP:
            groups.setdefault(json.dumps(steps, sort_keys=True), []).append(row)
    rows = []
    for key, group in groups.items():
        before = pick([row for row in group if not row.config.get("finetune")], data.metric)
        after = pick([row for row in group if row.config.get("finetune")], data.metric)
        rows.append(
            [
                text(LEVEL_STAGES[stage]),
                text(level_text(json.loads(key)[0], finished(after, before))),
                *size_cells(base, finished(after, before)),
                *outcome(data.metric, base, before),
                *outcome(data.metric, base, after),
            ]
        )
    return rows


def structured_rows(data: RunData, base: TrialRow) -> list[list[Cell]]:
    """One row per [structured] configuration (best LR): before = the one-shot pruned model's scores."""
    groups: dict[tuple, list[TrialRow]] = {}
    for row in data.stage("structured", done=False):
        config = row.config
        key = (config["schedule"], config["importance"], config["amount"], config["format"])
        groups.setdefault(key, []).append(row)
    rows = []
    for (schedule, importance, amount, fmt), group in groups.items():
        row = pick(group, data.metric)
        stored = row.extra.get("before_finetune") if row is not None and row.status == "done" else None
        if row is None or row.status != "done":
            before = outcome(data.metric, base, row)
        elif stored is not None:
            before = scored(data.metric, base, stored["score"])
        else:
            before = [(NO_BEFORE.get(schedule, "not recorded (a run from before it was)"), None), ("-", None)]
        precision = "" if fmt == "fp32" else f", {fmt.upper()}"
        rows.append(
            [
                text(f"{importance} channels, no sparsity training ({schedule}{precision})"),
                text(f"{percent(amount)} channels"),
                *size_cells(base, row),
                *before,
                *outcome(data.metric, base, row),
            ]
        )
    return rows


def seed004_table(data: RunData) -> Table | None:
    """Seed 004: network slimming and layer pruning after sparsity training, and gamma channels without
    it, with params, MACs, deployed speedup and the metric before and after the fine-tune."""
    if data.baseline is None or not any(data.stage(stage, done=False) for stage in LEVEL_STAGES):
        return None
    base = data.baseline
    rows = [
        [
            text("original"),
            text("-"),
            *size_cells(base, base),
            *outcome(data.metric, base, base),
            NOT_PRUNED,
            ("-", None),
        ]
    ]
    notes = ""
    for row in data.stage(SPARSITY_STAGE, done=False):
        steps = row.config.get("steps") or []
        if steps and steps[0]["op"] == SPARSITY_OP:
            rows.append(
                [
                    text("sparsity training (L1 on BN γ)"),
                    text(f"penalty {steps[0]['penalty']:g}"),
                    *size_cells(base, row),
                    *outcome(data.metric, base, row),
                    NOT_PRUNED,
                    ("-", None),
                ]
            )
            notes += gamma_note(row)
    for stage in LEVEL_STAGES:
        rows += level_rows(data, base, stage)
    rows += structured_rows(data, base)
    name, spec = data.metric.label or data.metric.name, header(data.metric)
    return Table(
        "seed004",
        "Pruning after sparsity training: network slimming and layer pruning (seed 004)",
        [
            "method",
            "level",
            "params",
            "MACs",
            "compression",
            "deployed speedup",
            f"before fine-tune {spec}",
            f"Δ {name} before",
            f"after fine-tune {spec}",
            f"Δ {name} after",
        ],
        rows,
        set(range(2, 10)),
        "before fine-tune: the pruned model as it is; after: fine-tuned at the LR, then refined at LR x "
        "refine_factor (several LRs: the trial with the best validation score). Δ: change against the "
        f"original. compression = original params / params{notes}. {DEPLOYED_NOTE}",
    )
