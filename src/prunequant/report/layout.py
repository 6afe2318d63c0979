"""The order of the report, shared by the markdown and HTML renderers: a summary, then tables and figures."""

from __future__ import annotations

from dataclasses import dataclass

from prunequant.report.plots import Plot
from prunequant.report.run_data import RunData
from prunequant.report.ship_box import ShipBox, ship_box
from prunequant.report.tables import Table

Block = Table | Plot

ORDER = (
    "profile",
    "deploy",
    "metric_vs_speedup",
    "sweep",
    "metric_vs_prune",
    "metric_vs_bits",
    "runtime_vs_level",
    "metric_vs_size",
    "metric_vs_latency",
    "pd",
    "seed003_schedules",
    "seed003_importance",
    "seed003_quant",
    "seed004",
    "structured",
    "sensitivity",
    "search",
    "export",
    "bench",
    "trials",
)
"""Table and plot keys in report order."""


@dataclass(frozen=True)
class Summary:
    """The headline: title, the "ship this" box (None before shipping), one line per fact; `recipe` is
    the run's recipe.toml text ("" if absent)."""

    title: str
    lines: list[str]
    recipe: str = ""
    ship: ShipBox | None = None


def summary(data: RunData) -> Summary:
    """The ship box, then task and budget, baseline, the best deployable form under the budget, the
    combined levels, and trial counts; every score in the budget metric's unit and direction."""
    counts = {
        status: sum(row.status == status for row in data.rows) for status in ("done", "pruned", "failed")
    }
    spec = data.metric
    name = spec.label or spec.name
    lines = [
        f"{len(data.rows)} trials: {counts['done']} done, {counts['pruned']} stopped early, "
        f"{counts['failed']} failed.",
        f"Task: {data.task['name']}; budget on validation {spec.title}: "
        f"{data.budget.get('text', 'not recorded')}; 'best' minimises {data.objective}.",
    ]
    base, best = data.baseline, data.best
    if base is not None:
        deployed = "deploy" in base.extra
        batch = data.recipe.get("run" if deployed else "profile", {}).get(
            "deploy_batch" if deployed else "batch_size", 1
        )
        latency = base.get("latency_fp32_ms")
        timing = f", {latency:.3f} ms per batch of {batch} in torch eager fp32" if latency else ""
        lines.append(
            f"Original: {name} {spec.format(base.get('score'))}, {base.get('params'):,} params, "
            f"{base.get('file_bytes', 0) / 1024:.1f} KB{timing}."
        )
    if base is not None and best is not None and data.ship is None:
        change = spec.display(best.get("score")) - spec.display(base.get("score"))
        parts = [
            f"{name} {spec.format(best.get('score'))} ({change:+.2f}{' pts' if spec.unit == '%' else ''})"
        ]
        if best.get("file_bytes") and base.get("file_bytes"):
            ratio = base.get("file_bytes") / best.get("file_bytes")
            parts.append(f"{best.get('file_bytes') / 1024:.1f} KB ({ratio:.2f}x smaller)")
        lines.append(f"Best under budget (not shipped): {best.label}: {', '.join(parts)}.")
    elif base is not None and best is None:
        lines.append("No deployable form stayed within the budget.")
    choice = data.combine_choice
    if choice:
        amount = "none" if choice["amount"] is None else f"{100 * choice['amount']:g}%"
        bits = "none" if choice["bits"] is None else f"{choice['bits']} bits"
        lines.append(f"Combined best levels: pruning {amount}, quantization {bits}.")
    recipe = data.run_dir / "recipe.toml"
    return Summary(
        f"Compression report: {data.name}",
        lines,
        recipe.read_text() if recipe.is_file() else "",
        ship_box(data.ship, spec),
    )


def arrange(tables: list[Table], plots: list[Plot]) -> list[Block]:
    """Tables and plots in ORDER (several bench tables keep their own order)."""
    blocks: list[Block] = []
    for key in ORDER:
        blocks += [plot for plot in plots if plot.key == key]
        blocks += [table for table in tables if table.key == key]
    return blocks
