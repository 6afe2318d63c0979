"""The report's tables as plain data (title, columns, cells with sort keys), rendered by markdown.py and
html.py: seed 000 Table I (profile) and Table II (post/aware x pruning/quantization), seed 003 Table 4
(performance density), seed 003 Tables 1-3 and seed 004's table (seed003_tables.py, seed004_table.py),
structured, search, export, benchmark and the full trial list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prunequant.lab.store import MODEL_STAGES, TrialRow
from prunequant.report.cells import (
    DEPLOYED_NOTE,
    Cell,
    Table,
    count,
    delta,
    deployed_speedup,
    header,
    metric,
    num,
    text,
)
from prunequant.report.run_data import RunData
from prunequant.report.seed003_tables import importance_table, quant_table, schedules_table
from prunequant.report.seed004_table import seed004_table


def metric_columns(data: RunData) -> list[str]:
    """Headers of the budget metric, its change vs the original, then the task's other metrics."""
    others = [header(spec) for spec in data.metrics if spec.name != data.metric.name]
    return [header(data.metric), f"Δ {data.metric.label or data.metric.name}", *others]


def metric_cells(data: RunData, row: TrialRow) -> list[Cell]:
    """Cells matching metric_columns: test score, its change, the task's other test metrics."""
    others = [metric(spec, row.get(spec.name)) for spec in data.metrics if spec.name != data.metric.name]
    return [metric(data.metric, row.get("score")), delta(row, data.baseline, data.metric), *others]


def step_of(row: TrialRow, op: str) -> dict[str, Any] | None:
    """The first step `op` of a compress trial's config, or None."""
    return next((step for step in row.config.get("steps", []) if step["op"] == op), None)


def sparsity(row: TrialRow) -> float | None:
    params, nonzero = row.get("params"), row.get("nonzero_params")
    return None if not params or nonzero is None else 1.0 - nonzero / params


def profile_table(data: RunData) -> Table | None:
    """Seed 000 Table I: the original model per top-level module."""
    if data.baseline is None:
        return None
    profile = data.baseline.extra["profile"]
    rows = []
    for group in [*profile["groups"], {**profile["total"], "name": "TOTAL", "params_share": 1.0}]:
        rows.append(
            [
                text(group["name"]),
                num(group.get("layers"), digits=0),
                count(group["params"]),
                num(group.get("params_share"), 100, 1),
                count(group["nonzero_params"]),
                count(group["macs"]),
                count(group["flops"]),
                num(group["activation_bytes"], 1 / 1024, 1),
                num(group.get("latency_ms"), digits=3),
            ]
        )
    rows[-1][1] = num(sum(g["layers"] for g in profile["groups"]), digits=0)
    return Table(
        "profile",
        "Table I. Profile of the original model (per top-level module)",
        [
            "module",
            "layers",
            "params",
            "params %",
            "non-zero",
            "MACs",
            "FLOPs",
            "activations KB",
            "latency ms",
        ],
        rows,
        set(range(1, 9)),
        "MACs/FLOPs per sample (FLOPs: seed 000 eq. 3/4); latency at the profile batch size.",
        {len(rows) - 1},
    )


def _sweep_kind(row: TrialRow) -> str:
    return {
        "post_prune": "Post",
        "post_quant": "Post",
        "aware_prune": "Aware",
        "aware_quant": "Aware",
        "combine": "Combined",
    }.get(row.stage, row.stage)


def sweep_table(data: RunData) -> Table | None:
    """Seed 000 Table II: post- and aware-training pruning and quantization, and the combination."""
    stages = ("post_prune", "aware_prune", "post_quant", "aware_quant", "combine")
    sweep = [row for stage in stages for row in data.stage(stage)]
    if not sweep or data.baseline is None:
        return None
    rows = [_sweep_row("Original", data.baseline, data)]
    rows += [_sweep_row(_sweep_kind(row), row, data) for row in sweep]
    best = {index + 1 for index, row in enumerate(sweep) if data.best and row.trial_id == data.best.trial_id}
    return Table(
        "sweep",
        "Table II. Post- and aware-training pruning and quantization (seed 000)",
        ["kind", "pruning", "quantization", "LR", *metric_columns(data)]
        + ["zeros %", "size KB", "deployed speedup", "trial s"],
        rows,
        set(range(4, 8 + len(data.metrics))),
        "pruning: the amount pruned (for quantization rows, the share of weights quantization itself rounds "
        "to zero, as in seed 000); aware = fine-tune at the LR shown, then refine at LR x refine_factor; "
        f"{DEPLOYED_NOTE}",
        best,
    )


def _sweep_row(kind: str, row: TrialRow, data: RunData) -> list[Cell]:
    prune, quant = step_of(row, "prune"), step_of(row, "quantize")
    zero_share = row.extra.get("steps", {}).get("zero_share")
    if prune is not None:
        pruning = num(prune["amount"], 100, 0, "%")
    elif zero_share is not None:
        pruning = num(zero_share, 100, 2, "%")
    else:
        pruning = text("-")
    bits = quant["w_bits"] if quant else 32
    finetune = row.config.get("finetune")
    return [
        text(kind),
        pruning,
        (f"{bits} bits", bits),
        text(f"{finetune['lr']:g}" if finetune else "-"),
        *metric_cells(data, row),
        num(sparsity(row), 100, 1),
        num(row.get("file_bytes"), 1 / 1024, 1),
        deployed_speedup(row),
        num(row.duration_s, digits=1),
    ]


def pd_table(data: RunData) -> Table | None:
    """Seed 003 Table 4: memory at the bit widths and sparsities used, and performance density."""
    rows_in = ([data.baseline] if data.baseline else []) + data.models()
    rows_in = [row for row in rows_in if row.get("pd") is not None]
    if not rows_in:
        return None
    rows_in.sort(key=lambda row: -row.get("pd"))
    rows = [
        [
            text(row.label),
            num(row.get("w_bits"), digits=0),
            num(row.get("a_bits"), digits=0),
            num(sparsity(row), 100, 1),
            num(row.get("weight_mb"), digits=3),
            num(row.get("activation_mb"), digits=3),
            num(row.get("weight_mb") + row.get("activation_mb"), digits=3),
            metric(data.metric, row.get("score")),
            num(row.get("pd"), digits=1),
        ]
        for row in rows_in
    ]
    return Table(
        "pd",
        "Table 4. Operating memory and performance density (seed 003)",
        [
            "model",
            "W bits",
            "A bits",
            "weight zeros %",
            "weights Mb",
            "activations Mb",
            "total Mb",
            header(data.metric),
            "PD",
        ],
        rows,
        set(range(1, 9)),
        "Mb = megabits (non-zero elements x bits / 1e6, activations for one input); "
        f"PD = {data.metric.label or data.metric.name} % / total Mb.",
    )


def structured_table(data: RunData) -> Table | None:
    """Seed 003: channel pruning x schedule x weight/activation bits."""
    rows_in = data.stage("structured")
    if not rows_in or data.baseline is None:
        return None
    rows = []
    for row in rows_in:
        config = row.config
        rows.append(
            [
                text(config["schedule"]),
                num(config["amount"], 100, 0, "%"),
                text(config["importance"]),
                text(config["format"].upper()),
                count(row.get("params")),
                count(row.get("macs")),
                metric(data.metric, row.get("score")),
                delta(row, data.baseline, data.metric),
                deployed_speedup(row),
                num(row.get("pd"), digits=1),
            ]
        )
    return Table(
        "structured",
        "Structured (channel) pruning x quantization x schedule (seed 003)",
        [
            "schedule",
            "channels",
            "importance",
            "format",
            "params",
            "MACs",
            header(data.metric),
            f"Δ {data.metric.label or data.metric.name}",
            "deployed speedup",
            "PD",
        ],
        rows,
        set(range(4, 10)),
        f"Channels are physically removed: MACs and latency drop with them. {DEPLOYED_NOTE}",
    )


def search_table(data: RunData) -> Table | None:
    """Every search trial, with its place on the Pareto fronts (accuracy vs size, vs latency); trials on
    the front of the recipe's objective are highlighted."""
    rows_in = [row for row in data.rows if row.stage == "search" and row.finished]
    if not rows_in:
        return None
    fronts = {
        objective: {row.trial_id for row in data.pareto_front(data.stage("search"), objective)}
        for objective in ("size", "latency")
    }
    rows = [
        [
            text(row.label),
            text(row.status),
            metric(data.metric, row.get("val_score")),
            metric(data.metric, row.get("score")),
            num(row.get("file_bytes"), 1 / 1024, 1),
            deployed_speedup(row),
            text("yes" if row.trial_id in fronts["size"] else ""),
            text("yes" if row.trial_id in fronts["latency"] else ""),
        ]
        for row in rows_in
    ]
    objective = fronts[data.objective]
    return Table(
        "search",
        "Automatic search (Optuna TPE) under the budget",
        [
            "configuration",
            "status",
            f"val {header(data.metric)}",
            f"test {header(data.metric)}",
            "size KB",
            "deployed speedup",
            "Pareto: size",
            "Pareto: runtime",
        ],
        rows,
        {2, 3, 4, 5},
        "pruned = stopped early by the pruner (validation drop far beyond the budget).",
        {index for index, row in enumerate(rows_in) if row.trial_id in objective},
    )


def export_table(data: RunData) -> Table | None:
    """ONNX exports: onnxruntime fp32 vs the deployed (int8 QDQ) file, accuracy, latency and size."""
    rows_in = data.stage("export")
    if not rows_in:
        return None
    rows = []
    for row in rows_in:
        fp32, deployed = row.get("latency_fp32_ms"), row.extra.get("deployed_ms")
        rows.append(
            [
                text(row.label.removeprefix("export ")),
                text(row.extra.get("precision", "-")),
                metric(data.metric, row.extra.get("fp32", {}).get("score")),
                metric(data.metric, row.get("score")),
                num(row.extra.get("parity", {}).get("max_abs_diff"), digits=4),
                num(row.extra.get("parity", {}).get("mean_rel_diff"), 100, 2),
                num(fp32, digits=3),
                num(deployed, digits=3),
                num(fp32 / deployed if fp32 and deployed else None, digits=2, suffix="x"),
                num(row.extra.get("fp32_bytes"), 1 / 1024, 1),
                num(row.get("file_bytes"), 1 / 1024, 1),
            ]
        )
    columns = [
        "model",
        "deployed as",
        f"fp32 {header(data.metric)}",
        f"deployed {header(data.metric)}",
        "parity max |Δ|",
        "parity relative mean |Δ| %",
        "fp32 ms",
        "deployed ms",
        "speedup",
        "fp32 KB",
        "deployed KB",
    ]
    return Table(
        "export",
        "ONNX export: onnxruntime fp32 vs the deployed file",
        columns,
        rows,
        set(range(2, 11)),
        "parity: the deployed file's outputs against the PyTorch model's on the test split (all outputs). "
        "int8: QDQ with integer kernels (a quantized model keeps its own scales; a float one is calibrated "
        "by onnxruntime, U8 activations / S8 per-channel weights). Other widths run as dequantized float.",
    )


def speed_cell(form: dict[str, Any], batch: str) -> Cell:
    """'6.10x (5.80-6.40)': median speedup over rounds and its p10-p90 spread."""
    value = form.get("speed", {}).get(batch)
    if value is None:
        return ("-", None)
    noisy = " noisy" if value.get("noisy") else ""
    return (f"{value['speedup']:.2f}x ({value['p10']:.2f}-{value['p90']:.2f}){noisy}", value["speedup"])


def within(data: RunData, value: float | None) -> bool:
    """True when a validation score is within the budget (the limit the lab selects by)."""
    limit = data.limit()
    if limit is None or value is None:
        return False
    return value >= limit - 1e-12 if data.metric.higher_is_better else value <= limit + 1e-12


def shipped_notes(card: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(trial id, runtime) -> "shipped" for the shipped form, "shipped for batch N" for a file the card's
    per_batch recommends at batch N instead (empty when nothing shipped)."""
    if not card.get("shipped"):
        return {}
    notes = {(card["trial_id"], card["runtime"]): "shipped"}
    for batch, entry in (card.get("per_batch") or {}).items():
        if not entry["main"]:
            key = (card["trial_id"], entry["runtime"])
            notes[key] = f"{notes[key]}, {batch}" if key in notes else f"shipped for batch {batch}"
    return notes


def deploy_table(data: RunData) -> Table | None:
    """Every candidate in the forms a user would deploy, each scored on its own file and timed against
    the original in torch eager fp32; the shipped forms (the file and any per-batch one) highlighted."""
    rows_in = [row for row in data.rows if row.status == "done" and "deploy" in row.extra]
    if not rows_in or data.baseline is None:
        return None
    shipped = shipped_notes(data.ship or {})
    base_val = data.baseline.get("val_score")
    rows, highlight, batches = [], set(), ["1", "1"]
    for row in rows_in:
        deploy = row.extra["deploy"]
        batches = ["1", str(deploy["batch"])]
        if deploy.get("no_speed_gain"):
            rows.append(
                [text(row.label), text("-"), text("-"), *[("-", None)] * 5, text(deploy["no_speed_gain"])]
            )
            continue
        for form in deploy["forms"]:
            val = form.get("val_score")
            change = (
                None
                if val is None or base_val is None
                else data.metric.display(val) - data.metric.display(base_val)
            )
            note = form.get("error") or shipped.get((row.trial_id, form["runtime"]), "")
            if (row.trial_id, form["runtime"]) in shipped:
                highlight.add(len(rows))
            rows.append(
                [
                    text(row.label),
                    text(form["runtime"]),
                    text(form.get("precision", "-")),
                    metric(data.metric, val),
                    num(change, digits=2),
                    num(form.get("bytes"), 1 / 1024, 1),
                    speed_cell(form, batches[0]),
                    speed_cell(form, batches[1]),
                    text(("yes" if within(data, val) else "no") + (f"; {note}" if note else "")),
                ]
            )
    return Table(
        "deploy",
        "Deployable forms: every candidate as a user would deploy it",
        [
            "trial",
            "runtime",
            "precision",
            f"val {header(data.metric)} (file)",
            f"Δ val {data.metric.label or data.metric.name}",
            "KB on disk",
            f"speedup @ batch {batches[0]}",
            f"speedup @ batch {batches[1]}",
            "within budget",
        ],
        rows,
        {3, 4, 5, 6, 7},
        "Each file is scored itself (validation split) and timed interleaved against the original in torch "
        "eager fp32, median over rounds (p10-p90 in brackets). Masked zeros alone have no faster form: "
        "dense kernels run them at the original's speed.",
        highlight,
    )


def bench_tables(data: RunData) -> list[Table]:
    """One table per bench trial: interleaved medians and ratios to the baseline."""
    tables = []
    for row in data.stage("bench"):
        cells = [
            [
                text(r["model"]),
                text(r["runtime"]),
                num(r["batch"], digits=0),
                num(r["median_ms"], digits=3),
                num(r["p90_ms"], digits=3),
                num(r["ratio_vs_first"], digits=2, suffix="x"),
                num(r["bytes"], 1 / 1024, 1) if r["bytes"] is not None else text("-"),
            ]
            for r in row.extra["rows"]
        ]
        tuned = (
            "set"
            if row.extra.get("malloc_tuned")
            else "NOT set (eager torch timings look worse than they are)"
        )
        tables.append(
            Table(
                "bench",
                "Runtime benchmark (interleaved rounds, medians; speedup vs the original in torch)",
                ["model", "runtime", "batch", "median ms", "p90 ms", "speedup", "KB on disk"],
                cells,
                {2, 3, 4, 5, 6},
                f"{row.extra['threads']} threads, {row.extra['rounds']} rounds x "
                f"{row.extra['repeats']} repeats; "
                f"glibc malloc tuning {tuned}.",
            )
        )
    return tables


def trials_table(data: RunData) -> Table:
    """Every trial of the run, sortable (the HTML report's last table)."""
    rows = [
        [
            text(row.stage),
            text(row.label),
            text(row.status),
            metric(data.metric, row.get("score")),
            metric(data.metric, row.get("val_score")),
            count(row.get("nonzero_params")),
            count(row.get("effective_macs")),
            num(row.get("file_bytes"), 1 / 1024, 1),
            deployed_speedup(row) if row.stage in ("profile", *MODEL_STAGES) else text("-"),
            num(row.get("pd"), digits=1),
            num(row.duration_s, digits=1),
            text(row.error or ""),
        ]
        for row in data.rows
    ]
    highlight = {i for i, row in enumerate(data.rows) if data.best and row.trial_id == data.best.trial_id}
    return Table(
        "trials",
        "All trials",
        [
            "stage",
            "trial",
            "status",
            f"test {header(data.metric)}",
            f"val {header(data.metric)}",
            "non-zero params",
            "effective MACs",
            "size KB",
            "deployed speedup",
            "PD",
            "time s",
            "error",
        ],
        rows,
        set(range(3, 11)),
        "Click a column header to sort.",
        highlight,
    )


TABLES: list[Callable[[RunData], Table | None]] = [
    profile_table,
    deploy_table,
    sweep_table,
    pd_table,
    schedules_table,
    importance_table,
    quant_table,
    seed004_table,
    structured_table,
    search_table,
    export_table,
]


def all_tables(data: RunData) -> list[Table]:
    """The report's tables in order (those with no data are left out), the full trial list last."""
    found = [table for build in TABLES if (table := build(data)) is not None]
    return [*found, *bench_tables(data), trials_table(data)]
