"""The report's table type (plain data: title, columns, cells with sort keys) and its cell formatters,
shared by tables.py and seed_tables.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prunequant.lab.store import TrialRow
from prunequant.tasks import MetricSpec

Cell = tuple[str, float | str | None]
"""(text shown, sort key)."""

DEPLOYED_NOTE = (
    "deployed speedup: the fastest deployable form (int8 ONNX, the physically smaller model on "
    "onnxruntime, or a PT2E int8 program where [run] runtimes enables it) against the original in torch "
    "eager fp32 at the deploy batch, timed interleaved in the trial; masked zeros alone run on dense "
    "kernels at the original's speed."
)


@dataclass(frozen=True)
class Table:
    """A titled table; `numeric` marks right-aligned columns; `highlight` holds row indices to emphasise."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Cell]]
    numeric: set[int] = field(default_factory=set)
    note: str = ""
    highlight: set[int] = field(default_factory=set)


def num(value: float | None, scale: float = 1.0, digits: int = 2, suffix: str = "") -> Cell:
    """A number cell: formatted text and the raw value as sort key; '-' when missing."""
    if value is None:
        return ("-", None)
    return (f"{value * scale:,.{digits}f}{suffix}", value)


def text(value: Any) -> Cell:
    return (str(value), str(value))


def count(value: float | None) -> Cell:
    """A large count with an SI suffix (k, M, G)."""
    if value is None:
        return ("-", None)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return (f"{value / scale:.2f}{unit}", value)
    return (f"{value:.0f}", value)


def header(spec: MetricSpec) -> str:
    """A metric's column header with unit and better-arrow, e.g. 'top-1 accuracy % ↑', 'EPE px ↓'."""
    unit = f" {spec.unit}" if spec.unit else ""
    return f"{spec.label or spec.name}{unit} {spec.arrow}"


def metric(spec: MetricSpec, value: float | None) -> Cell:
    """A metric cell in the metric's display units (unit '%': x100), the raw value as sort key."""
    if value is None:
        return ("-", None)
    return (f"{spec.display(value):,.2f}", value)


def delta(row: TrialRow, baseline: TrialRow | None, spec: MetricSpec, key: str = "score") -> Cell:
    """Change of `key` versus the baseline in the metric's display units (unit '%': points)."""
    if baseline is None or row.get(key) is None or baseline.get(key) is None:
        return ("-", None)
    change = spec.display(row.get(key)) - spec.display(baseline.get(key))
    return (f"{change:+.2f}", change)


def deployed_speedup(row: TrialRow) -> Cell:
    """The fastest deployable form's speedup over the original in torch eager fp32 at the deploy batch,
    with its runtime, e.g. "6.10x onnxruntime-int8"; masked zeros only: "no speed gain: dense kernels".
    A run from before deployable forms has no deployed speed ("not measured as deployed")."""
    deploy = row.extra.get("deploy")
    if deploy is None:
        return ("not measured as deployed", None)
    if deploy.get("no_speed_gain"):
        return (deploy["no_speed_gain"], None)
    timed = [form for form in deploy["forms"] if "speed" in form]
    if not timed:
        return ("no form exported", None)
    batch = str(deploy["batch"])
    fastest = max(timed, key=lambda form: form["speed"][batch]["speedup"])
    value = fastest["speed"][batch]["speedup"]
    return (f"{value:.2f}x {fastest['runtime']}", value)


NO_TRIAL = "no trial"
"""The text of a seed table's cell that no trial of the run fills."""
_WAITING = {"pending": "not run yet (pending)", "running": "not finished (running)"}


def pick(rows: list[TrialRow], spec: MetricSpec) -> TrialRow | None:
    """The trial that stands for a table cell among `rows` (one configuration at several LRs): the finished
    one with the best validation score, else the last one (its cell then says why it has no figure).

    Parameters
    ----------
    rows:
        The trials of one cell, in run order.
    spec:
        The budget metric (its direction decides "best").

    Returns
    -------
    The trial, or None when `rows` is empty.
    """
    done = [row for row in rows if row.status == "done"]
    if not done:
        return rows[-1] if rows else None
    return min(done, key=lambda row: spec.sort_key(row.get("val_score")))


def scored(spec: MetricSpec, baseline: TrialRow, value: float | None) -> list[Cell]:
    """[the metric, its change vs the baseline's test score] for a test-split `value` of the metric."""
    if value is None:
        return [("not measured", None), ("-", None)]
    change = spec.display(value) - spec.display(baseline.get("score"))
    return [metric(spec, value), (f"{change:+.2f}", change)]


def outcome(spec: MetricSpec, baseline: TrialRow, row: TrialRow | None) -> list[Cell]:
    """[metric, change] cells of `row`'s test score; a trial without one says why ("failed: ...",
    "not run yet (pending)", "stopped early", "no trial")."""
    if row is None:
        return [(NO_TRIAL, None), ("-", None)]
    if row.status == "failed":
        reason = (row.error or "no error recorded").splitlines()[0]
        return [(f"failed: {reason[:80]}", None), ("-", None)]
    if row.status in _WAITING:
        return [(_WAITING[row.status], None), ("-", None)]
    if row.status == "pruned" and row.get("score") is None:
        return [("stopped early", None), ("-", None)]
    return scored(spec, baseline, row.get("score"))
