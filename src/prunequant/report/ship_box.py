"""The "ship this" box that leads the report: what the run shipped (ship/model_card.json), or why not.

Shipped: the file, its runtime (and what ran it when timed) and how to run it, its metric on the full test
split evaluated ON THE FILE against the original's, its size, its speedup over the original in torch eager
fp32 at batch 1 and the deploy batch with the p10-p90 spread over interleaved rounds, and its parity with the
PyTorch model. Where the card's `per_batch` recommends another file of the same trial at a batch size (faster
there beyond the tie floor), one line per such batch gives that file, its speed and its test metric.
Nothing within the budget: the box says so and shows the closest form and what it missed the
budget by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prunequant.tasks import MetricSpec


@dataclass(frozen=True)
class ShipBox:
    """A titled list of lines; `shipped` False when nothing met the budget."""

    title: str
    lines: list[str]
    shipped: bool


def speed_text(speed: dict[str, Any], batches: list[int]) -> str:
    """'14.20x at batch 1 (p10-p90 12.90-15.00x), 7.10x at batch 64 (...)'; noisy ones say so."""
    parts = []
    for batch in batches:
        value = speed[str(batch)]
        noisy = ", noisy" if value.get("noisy") else ""
        spread = f"p10-p90 {value['p10']:.2f}-{value['p90']:.2f}x{noisy}"
        parts.append(f"{value['speedup']:.2f}x at batch {batch} ({spread})")
    return ", ".join(parts)


def engine_text(card: dict[str, Any]) -> str:
    """'; run by torch-int8 (pt2e+inductor)': what ran the shipped file when it was timed ('' on cards
    written before the runtime was recorded)."""
    return f"; run by {card['engine']}" if card.get("engine") else ""


def conditions_text(conditions: dict[str, Any]) -> str:
    """Threads, rounds, load and malloc tuning of a measurement."""
    load = (
        f"UNDER LOAD (load average {conditions['load_avg']:.2f})"
        if conditions.get("under_load")
        else f"idle machine (load average {conditions['load_avg']:.2f})"
    )
    malloc = (
        "" if conditions.get("malloc_tuned") else "; glibc malloc tuning not set (eager torch looks slower)"
    )
    return (
        f"{conditions['threads']} thread(s), {conditions['rounds']} interleaved rounds x "
        f"{conditions['repeats']} calls, {load}{malloc}"
    )


def missed_text(missed: float, budget: dict[str, Any], metric: MetricSpec) -> str:
    """How far beyond the budget, in the budget's terms."""
    if budget.get("relative"):
        return f"{100 * missed:.2f}% of the original"
    if metric.unit == "%":
        return f"{100 * missed:.2f} point(s)"
    return f"{missed:.4g} {metric.unit}".rstrip()


def parity_text(parity: dict[str, Any]) -> str:
    """The task's comparison in one phrase: prediction agreement (classification) and output errors."""
    parts = []
    if parity.get("agreement") is not None:
        parts.append(f"{100 * parity['agreement']:.2f}% same predictions")
    for key, name in (("max_abs_diff", "max |Δ|"), ("mean_rel_diff", "relative mean |Δ|")):
        if parity.get(key) is not None:
            parts.append(f"{name} {parity[key]:.3g}")
    return ", ".join(parts) or "not measured"


def contradiction(entry: dict[str, Any], main_file: str) -> str:
    """The warning a per-batch line carries when the re-timing in ship/ did not find its file faster
    than the shipped one at that batch (empty otherwise, and on cards written before the check)."""
    if entry.get("confirmed", True):
        return ""
    return (
        f" Re-timed in ship/, it was not faster than {main_file} here: the trial's timing "
        f"({entry['trial_speedup']:.2f}x) chose it; time both where you deploy."
    )


def per_batch_lines(card: dict[str, Any], metric: MetricSpec) -> list[str]:
    """'At batch 1: run ship/model.int8.onnx on onnxruntime-int8 ...' for each batch whose recommended
    file is not the shipped one (none on cards written before per-batch recommendations)."""
    name, unit = metric.label or metric.name, " pts" if metric.unit == "%" else ""
    lines = []
    for batch, entry in sorted((card.get("per_batch") or {}).items(), key=lambda item: int(item[0])):
        if entry["main"]:
            continue
        main = card["speed"][batch]["speedup"]
        lines.append(
            f"At batch {batch}: run {entry['file']} on {entry['runtime']} ({entry['precision']}"
            f"{engine_text(entry)}), {speed_text(entry['speed'], [int(batch)])} vs {main:.2f}x for "
            f"{card['file']}; {name} on the full test split (evaluated on that file) "
            f"{metric.format(entry['test'][card['metric']])} ({entry['change']:+.2f}{unit})."
            + contradiction(entry, card["file"])
        )
    if lines:
        lines.append(f"Per-batch files: {card['per_batch_rule']}.")
    return lines


def ship_box(card: dict[str, Any] | None, metric: MetricSpec) -> ShipBox | None:
    """The box for a model card (None without a card: the run has not reached shipping)."""
    if card is None:
        return None
    name, batches = metric.label or metric.name, card["batches"]
    budget = card["budget"]
    if not card["shipped"]:
        lines = [f"Nothing shipped: {card['reason']} ({budget['text']})."]
        closest = card.get("closest")
        if closest:
            lines.append(
                f"Closest: {closest['label']} on {closest['runtime']}: validation {name} "
                f"{metric.format(closest['val_score'])}, misses the budget by "
                f"{missed_text(closest['missed_by'], budget, metric)}; "
                f"{speed_text(closest['speed'], batches)}, {closest['bytes'] / 1024:.1f} KB."
            )
        return ShipBox("Ship this: nothing meets the budget", lines, False)
    unit = " pts" if metric.unit == "%" else ""
    lines = [
        f"File: {card['file']} on {card['runtime']} ({card['precision']}{engine_text(card)}), from trial "
        f"'{card['label']}'.",
        f"{name} on the full test split ({card['test_n']:,} samples, evaluated on the shipped file): "
        f"{metric.format(card['test'][card['metric']])} vs the original's "
        f"{metric.format(card['original_test'][card['metric']])} ({card['change']:+.2f}{unit}); "
        f"budget: {budget['text']} (validation).",
        f"Size: {card['bytes'] / 1024:.1f} KB vs {card['original_bytes'] / 1024:.1f} KB "
        f"({card['smaller']:.1f}x smaller).",
        f"Speed vs the original in torch eager fp32: {speed_text(card['speed'], batches)}; "
        f"{conditions_text(card['conditions'])}.",
        f"Parity with the PyTorch model (full test split): {parity_text(card['parity'])}.",
        *per_batch_lines(card, metric),
        f"Chosen by objective '{card['objective']}'; {card.get('selection', 'tie rule not recorded')}.",
    ]
    if card.get("usage"):
        lines.insert(1, f"Run it: {card['usage']}.")
    fastest = card.get("fastest_any_budget")
    if fastest and (fastest["trial_id"], fastest["runtime"]) != (card["trial_id"], card["runtime"]):
        lines.append(
            f"Fastest form regardless of budget: {fastest['label']} on {fastest['runtime']}, "
            f"{speed_text(fastest['speed'], batches)}, "
            f"validation {name} {metric.format(fastest['val_score'])}."
        )
    return ShipBox("Ship this", lines, True)
