"""Seed 003's Tables 1-3 in the seed's own layout: rows grouped by channel sparsity (Baseline, 50 %, 75 %
...), one column of the budget metric (with its direction arrow) and its change against the full model.

- Table 1: the pruning schedules (From Scratch, One-Shot, Stepwise, Layerwise) in float;
- Table 2: layerwise pruning by activation L1 (A) against weight L1 (W);
- Table 3: W8A8 / W4A8 / W4A4 at each sparsity, from [structured] and [joint] trials (and the unpruned
  model's quantized trials, where the run has them).
The float tables read the [structured] trials in fp32; a run without any (the older cross-product
recipes) compares the schedules at the widest format it has, and the title says so. Several LRs of one
configuration: the trial with the best validation score fills the cell (cells.pick).
"""

from __future__ import annotations

from collections.abc import Iterable

from prunequant.lab.store import MAX_BITS, TrialRow, parse_format, percent
from prunequant.report.cells import Cell, Table, header, outcome, pick, text
from prunequant.report.run_data import RunData

SCHEDULES = {
    "from-scratch": "From Scratch",
    "one-shot": "One-Shot",
    "stepwise": "Stepwise",
    "layerwise": "Layerwise",
}
ACTIVATION = "activation_l1"
IMPORTANCE_TAGS = {ACTIVATION: "A", "l1": "W"}
FLOAT = "fp32"
QUANT_SWEEPS = ("aware_quant", "post_quant")
"""Stages whose single-step quantize trials are the unpruned model's quantized rows of Table 3."""


def sparsity_group(amount: float) -> Cell:
    """The group label of a channel amount: 'Baseline' for none, else e.g. '50% sparsity'."""
    return ("Baseline", 0.0) if amount == 0 else (f"{percent(amount)} sparsity", amount)


def format_order(fmt: str) -> tuple[int, int]:
    """Sort key putting the widest format first: fp32, then w8a8, w4a8, w4a4."""
    w_bits, a_bits = parse_format("format", fmt)
    return -w_bits, -a_bits


def importance_order(importance: str) -> tuple[int, str]:
    """activation_l1 first, then l1, then any other importance by name."""
    tags = list(IMPORTANCE_TAGS)
    return (tags.index(importance) if importance in tags else len(tags), importance)


def float_trials(data: RunData) -> tuple[list[TrialRow], str]:
    """The [structured] trials (any status) of the format Tables 1 and 2 compare, and that format: fp32,
    else the widest format of the run."""
    rows = data.stage("structured", done=False)
    formats = sorted({row.config["format"] for row in rows}, key=format_order)
    fmt = FLOAT if FLOAT in formats else (formats[0] if formats else FLOAT)
    return [row for row in rows if row.config["format"] == fmt], fmt


def at_format(fmt: str) -> tuple[str, str]:
    """(title suffix, note) naming the format compared when it is not float."""
    if fmt == FLOAT:
        return "", ""
    return (
        f", at {fmt.upper()}",
        f" This run has no fp32 [structured] trial: the rows compare {fmt.upper()} models, the widest "
        "format it has.",
    )


def matching(rows: Iterable[TrialRow], **config: object) -> list[TrialRow]:
    """The rows whose config holds every key = value given."""
    return [row for row in rows if all(row.config.get(key) == value for key, value in config.items())]


def baseline_cells(data: RunData, baseline: TrialRow, *, columns: int) -> list[Cell]:
    """The 'Baseline | Full Model' row, padded with '-' to `columns` label columns."""
    pad = [text("-")] * (columns - 2)
    return [sparsity_group(0.0), text("Full Model"), *pad, *outcome(data.metric, baseline, baseline)]


def seed_table(
    data: RunData,
    baseline: TrialRow,
    key: str,
    title: str,
    labels: list[str],
    body: list[list[Cell]],
    note: str,
) -> Table:
    """A Tables 1-3 layout: `labels` columns, then the metric and its change; the baseline row first."""
    name = data.metric.label or data.metric.name
    rows = [baseline_cells(data, baseline, columns=len(labels)), *body]
    columns = [*labels, header(data.metric), f"Δ {name}"]
    return Table(
        key,
        title,
        columns,
        rows,
        {len(labels), len(labels) + 1},
        f"{note} Δ: change against the full model{' in points' if data.metric.unit == '%' else ''}. "
        "Several LRs: the trial with the best validation score fills the cell; a cell without a figure "
        "says why.",
    )


def schedules_table(data: RunData) -> Table | None:
    """Seed 003 Table 1: the schedules at each sparsity (activation-L1 importance where the run has it)."""
    trials, fmt = float_trials(data)
    schedules = [name for name in SCHEDULES if matching(trials, schedule=name)]
    if data.baseline is None or len(schedules) < 2:
        return None
    picked: list[tuple[float, str, str | None, TrialRow | None]] = []
    for amount in sorted({row.config["amount"] for row in trials}):
        for schedule in schedules:
            group = matching(trials, amount=amount, schedule=schedule)
            preferred = matching(group, importance=ACTIVATION) or group
            importances = sorted({row.config["importance"] for row in preferred}, key=importance_order)
            for importance in importances or [None]:
                row = pick(matching(preferred, importance=importance), data.metric) if importance else None
                picked.append((amount, schedule, importance, row))
    mixed = len({importance for _, _, importance, _ in picked if importance}) > 1
    body = [
        [
            sparsity_group(amount),
            text(SCHEDULES[schedule]),
            *([text(importance or "-")] if mixed else []),
            *outcome(data.metric, data.baseline, row),
        ]
        for amount, schedule, importance, row in picked
    ]
    suffix, note = at_format(fmt)
    used = {importance for _, _, importance, _ in picked if importance}
    return seed_table(
        data,
        data.baseline,
        "seed003_schedules",
        f"Table 1. Comparing pruning schedules (seed 003){suffix}",
        ["channel sparsity", "schedule", *(["importance"] if mixed else [])],
        body,
        "Every schedule has the same training budget ([structured] epochs + refine_epochs). Importance: "
        f"{', '.join(sorted(used, key=importance_order)) or '-'} (activation L1, seed 003 Alg. 1, where "
        f"the run has it).{note}",
    )


def importance_table(data: RunData) -> Table | None:
    """Seed 003 Table 2: layerwise pruning by activation L1 (A) against weight L1 (W) at each sparsity."""
    trials, fmt = float_trials(data)
    layerwise = matching(trials, schedule="layerwise")
    importances = sorted({row.config["importance"] for row in layerwise}, key=importance_order)
    if data.baseline is None or len(importances) < 2:
        return None
    body = [
        [
            sparsity_group(amount),
            text(f"Layerwise ({IMPORTANCE_TAGS.get(importance, importance)})"),
            *outcome(data.metric, data.baseline, pick(matching(cell, importance=importance), data.metric)),
        ]
        for amount in sorted({row.config["amount"] for row in layerwise})
        for cell in [matching(layerwise, amount=amount)]
        for importance in importances
    ]
    suffix, note = at_format(fmt)
    return seed_table(
        data,
        data.baseline,
        "seed003_importance",
        f"Table 2. Layerwise pruning: activation (A) against weight (W) importance (seed 003){suffix}",
        ["channel sparsity", "method"],
        body,
        "A: mean L1 norm of each channel's output activations on calibration batches (activation_l1); "
        f"W: L1 norm of the channel's weights (l1).{note}",
    )


def source_of(stage: str, row: TrialRow) -> str:
    """Where a Table 3 row comes from: the stage, with the schedule and importance it used."""
    if stage == "joint":
        return f"joint: layerwise {row.config['importance']} + QAT"
    if stage == "structured":
        return f"structured: {row.config['schedule']}, {row.config['importance']}"
    return stage


def sweep_format(row: TrialRow) -> str | None:
    """'wXaY' of a trial whose only step is a quantize (an unpruned quantized model), else None."""
    steps = row.config.get("steps") or []
    if len(steps) != 1 or steps[0]["op"] != "quantize":
        return None
    return f"w{steps[0]['w_bits']}a{steps[0].get('a_bits', MAX_BITS)}"  # runs from before a_bits


Candidate = tuple[float, str, str, list[TrialRow]]
"""(amount, format, stage, the trials of one Table 3 row)."""


def quant_candidates(data: RunData) -> list[Candidate]:
    """Table 3's rows: [joint] trials and quantized [structured] trials per amount x format (layerwise
    activation-L1 preferred: the seed's own pipeline), then the unpruned model's single-step quantize
    trials of the quantization sweeps that quantize activations too or share a format with those."""
    found: list[Candidate] = []
    structured = [row for row in data.stage("structured", done=False) if row.config["format"] != FLOAT]
    for stage, rows in (("joint", data.stage("joint", done=False)), ("structured", structured)):
        for amount, fmt in dict.fromkeys((row.config["amount"], row.config["format"]) for row in rows):
            group = matching(rows, amount=amount, format=fmt)
            found.append(
                (amount, fmt, stage, matching(group, schedule="layerwise", importance=ACTIVATION) or group)
            )
    formats = {fmt for _, fmt, _, _ in found}
    for stage in QUANT_SWEEPS:
        rows = [row for row in data.stage(stage, done=False) if sweep_format(row) is not None]
        for fmt in dict.fromkeys(sweep_format(row) for row in rows):
            if fmt in formats or parse_format("format", fmt)[1] != MAX_BITS:
                found.append((0.0, fmt, stage, [row for row in rows if sweep_format(row) == fmt]))
    return found


def quant_table(data: RunData) -> Table | None:
    """Seed 003 Table 3: W8A8 / W4A8 / W4A4 (the run's formats) at each sparsity, the unpruned model's
    quantized rows first where a trial gives them; each row names the stage it came from."""
    found = quant_candidates(data)
    if data.baseline is None or not any(amount > 0 for amount, _, _, _ in found):
        return None
    stages = ("joint", "structured", *QUANT_SWEEPS)
    body = []
    pruned = {fmt for amount, fmt, _, _ in found if amount > 0}  # each sparsity: a row per format
    for amount in sorted({amount for amount, _, _, _ in found}):
        for fmt in sorted(pruned if amount > 0 else {fmt for _, fmt, _, _ in found}, key=format_order):
            cells = sorted(
                (cell for cell in found if cell[:2] == (amount, fmt)), key=lambda cell: stages.index(cell[2])
            )
            if not cells and amount > 0:
                body.append(
                    [
                        sparsity_group(amount),
                        text(fmt.upper()),
                        text("-"),
                        *outcome(data.metric, data.baseline, None),
                    ]
                )
            for _, _, stage, rows in cells:
                row = pick(rows, data.metric)
                assert row is not None, "a candidate holds at least one trial"
                body.append(
                    [
                        sparsity_group(amount),
                        text(fmt.upper()),
                        text(source_of(stage, row)),
                        *outcome(data.metric, data.baseline, row),
                    ]
                )
    return seed_table(
        data,
        data.baseline,
        "seed003_quant",
        "Table 3. Channel pruning with quantized weights (W) and activations (A) (seed 003)",
        ["channel sparsity", "format", "from"],
        body,
        "WxAy: x-bit weights (per channel), y-bit activations, after quantization-aware fine-tuning. joint: "
        "layerwise pruning while fine-tuning, then QAT (seed 003 Alg. 1-3); structured: the [structured] "
        "trial of that schedule and importance (layerwise activation-L1 where the run has it).",
    )
