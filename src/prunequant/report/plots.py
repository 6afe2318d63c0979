"""The report's figures (matplotlib Agg, no pyplot state): the budget metric vs prune ratio and vs bits, vs
latency and vs size with the Pareto front, runtime vs level, the sensitivity heatmaps, structured pruning.
Every metric axis is the task's (label, unit, which way is better), values in its display units."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from prunequant.lab.store import TrialRow
from prunequant.report.run_data import RunData
from prunequant.report.tables import step_of
from prunequant.timing import NO_SPEED_GAIN_DENSE

STAGE_COLORS = {
    "post_prune": "#1f77b4",
    "aware_prune": "#2ca02c",
    "post_quant": "#9467bd",
    "aware_quant": "#8c564b",
    "combine": "#d62728",
    "structured": "#ff7f0e",
    "joint": "#bcbd22",
    "iterative": "#7f7f7f",
    "search": "#17becf",
}
STAGE_NAMES = {
    "post_prune": "post prune",
    "aware_prune": "aware prune",
    "post_quant": "post quant",
    "aware_quant": "aware quant",
    "combine": "combined",
    "structured": "structured",
    "joint": "joint (seed 003)",
    "iterative": "iterative channels",
    "search": "search",
}
AWARE_COLORS = ("#2ca02c", "#ff7f0e", "#8c564b", "#e377c2")
DPI = 110


def _legend(ax: Axes) -> None:
    """The legend outside the axes, on the right, so it never hides data."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _bit_ticks(ax: Axes, rows: list[TrialRow]) -> None:
    """Integer bit widths on the x axis, widest on the left."""
    ticks = sorted({_bits(row) for row in rows})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.invert_xaxis()


@dataclass(frozen=True)
class Plot:
    """A written figure: its file, and a caption for the report."""

    key: str
    path: Path
    caption: str


def _figure(width: float = 8.5, height: float = 4.2, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    return figure, list(axes)


def _baseline_lines(ax: Axes, data: RunData) -> None:
    """The original model (red, as in seed 000) and the limit the budget allows (dashed)."""
    spec = data.metric
    if data.baseline is None or data.baseline.get("score") is None:
        return
    level = spec.display(data.baseline.get("score"))
    ax.axhline(level, color="red", lw=1.5, label=f"original ({spec.format(data.baseline.get('score'))})")
    limit = data.limit()
    if limit is not None:
        shift = spec.display(limit) - spec.display(data.baseline.get("val_score"))
        ax.axhline(level + shift, color="red", lw=1, ls="--", alpha=0.6, label="budget limit")


def _ylabel(data: RunData) -> str:
    """The metric axis: 'test EPE (px, lower is better)'."""
    return f"test {data.metric.title}"


def _name(data: RunData) -> str:
    return data.metric.label or data.metric.name


def _lr(row: TrialRow) -> float:
    return row.config["finetune"]["lr"] if row.config.get("finetune") else 0.0


def _series(
    ax: Axes, data: RunData, rows: list[TrialRow], level: Callable[[TrialRow], float], label: str, **style
) -> None:
    spec = data.metric
    points = sorted(
        (level(row), spec.display(row.get("score"))) for row in rows if row.get("score") is not None
    )
    if points:
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o", label=label, **style)


def _aware_series(
    ax: Axes, data: RunData, rows: list[TrialRow], level: Callable[[TrialRow], float], name: str
) -> None:
    """Per LR: after fine-tuning at the LR (dotted) and after refining at LR/10 (solid)."""
    by_lr: dict[float, list[TrialRow]] = defaultdict(list)
    for row in rows:
        by_lr[_lr(row)].append(row)
    for index, (lr, group) in enumerate(sorted(by_lr.items())):
        color = AWARE_COLORS[index % len(AWARE_COLORS)]
        phases = [
            (level(r), data.metric.display(r.extra["phases"][0]["score"]))
            for r in group
            if len(r.extra.get("phases", [])) > 1
        ]
        if phases:
            xs, ys = zip(*sorted(phases), strict=True)
            ax.plot(xs, ys, marker="^", ls=":", color=color, label=f"{name}: fine-tuned @ lr {lr:g}")
        label = f"{name} + refine (lr {lr:g}, then /10)" if phases else f"{name} @ lr {lr:g}"
        _series(ax, data, group, level, label, color=color)


def _amount(row: TrialRow) -> float:
    return 100 * step_of(row, "prune")["amount"]


def _bits(row: TrialRow) -> float:
    return step_of(row, "quantize")["w_bits"]


def metric_vs_prune(data: RunData) -> Figure | None:
    """Seed 000 Fig. 1/3, seed 002 Fig. 1: the metric vs prune ratio, post vs aware vs refine."""
    post, aware = data.stage("post_prune"), data.stage("aware_prune")
    if not post and not aware:
        return None
    figure, (ax,) = _figure()
    _series(ax, data, post, _amount, "post-training", color=STAGE_COLORS["post_prune"])
    _aware_series(ax, data, aware, _amount, "aware")
    _baseline_lines(ax, data)
    ax.set(xlabel="weights pruned (%)", ylabel=_ylabel(data), title=f"{_name(data)} vs. pruning ratio")
    _legend(ax)
    return figure


def metric_vs_bits(data: RunData) -> Figure | None:
    """Seed 000 Fig. 2: the metric vs weight bits, post vs aware."""
    post, aware = data.stage("post_quant"), data.stage("aware_quant")
    if not post and not aware:
        return None
    figure, (ax,) = _figure()
    _series(ax, data, post, _bits, "post-training", color=STAGE_COLORS["post_quant"])
    _aware_series(ax, data, aware, _bits, "aware")
    _baseline_lines(ax, data)
    _bit_ticks(ax, post + aware)
    ax.set(xlabel="weight bits", ylabel=_ylabel(data), title=f"{_name(data)} vs. quantization bits")
    _legend(ax)
    return figure


def deployed_latency(row: TrialRow) -> float | None:
    """Runtime of the row's fastest deployable form relative to the original in torch eager fp32; None
    without one (masked zeros only, or a run from before deployable forms, whose eager timing of a
    fake-quant or masked model is not a speed)."""
    deploy = row.extra.get("deploy")
    return None if deploy is None or deploy.get("no_speed_gain") else row.cost("latency")


def _tradeoff(data: RunData, objective: str, scale: float, xlabel: str, title: str) -> Figure | None:
    """Every model's score against its objective value (x `scale`), the Pareto front, the original,
    the combined model and the best one under budget."""
    spec = data.metric

    def cost(row: TrialRow) -> float | None:
        value = deployed_latency(row) if objective == "latency" else row.cost(objective)
        return None if value is None else scale * value

    models = [row for row in data.models() if cost(row) is not None and row.get("score") is not None]
    if not models or data.baseline is None:
        return None
    figure, (ax,) = _figure(9.0, 4.8)

    def mark(rows: list[TrialRow], **style) -> None:
        ax.scatter([cost(r) for r in rows], [spec.display(r.get("score")) for r in rows], **style)

    for stage, color in STAGE_COLORS.items():
        rows = [row for row in models if row.stage == stage]
        if rows:
            mark(rows, s=28, color=color, alpha=0.8, label=STAGE_NAMES[stage])
    front = data.pareto_front([row for row in [*models, data.baseline] if cost(row) is not None], objective)
    ax.step(
        [cost(r) for r in front],
        [spec.display(r.get("score")) for r in front],
        where="post",
        color="black",
        lw=1,
        alpha=0.7,
        label="Pareto front",
    )
    if cost(data.baseline) is not None:
        mark([data.baseline], s=140, color="green", edgecolor="black", zorder=5, label="original")
    combined = [row for row in data.stage("combine") if cost(row) is not None]
    if combined:
        mark(combined, marker="*", s=320, color="#d62728", edgecolor="black", zorder=6, label="best combined")
    if data.best is not None and cost(data.best) is not None:
        mark(
            [data.best],
            s=260,
            facecolor="none",
            edgecolor="gold",
            lw=2.5,
            zorder=7,
            label=f"best under budget ({data.objective})",
        )
    _baseline_lines(ax, data)
    ax.set(xlabel=xlabel, ylabel=_ylabel(data), title=f"{_name(data)} {title}")
    _legend(ax)
    return figure


def metric_vs_latency(data: RunData) -> Figure | None:
    """Seed 000 Fig. 4 (right): every model's score against its runtime relative to the original."""
    return _tradeoff(
        data,
        "latency",
        1.0,
        "runtime of the fastest deployable form / the original's in torch eager fp32",
        "vs. runtime",
    )


def metric_vs_size(data: RunData) -> Figure | None:
    """Seed 000 Fig. 4 (left): every model's score against its compressed file size."""
    return _tradeoff(data, "size", 1 / 1024, "model file size (KB)", "vs. model size")


def runtime_vs_level(data: RunData) -> Figure | None:
    """Seed 000 Fig. 6: per pruning level and per bit width, the speedup of each trial's fastest deployable
    form over the original in torch eager fp32 (> 1 = faster, timed interleaved in the trial). Masked zeros
    alone have no faster form: their panel says "no speed gain: dense kernels" instead of a point."""
    panels = [
        (("post_prune", "aware_prune"), _amount, "weights pruned (%)", "pruning level", NO_SPEED_GAIN_DENSE),
        (
            ("post_quant", "aware_quant"),
            _bits,
            "weight bits",
            "bit width",
            "no deployable form timed",
        ),
    ]
    panels = [panel for panel in panels if any(data.stage(s) for s in panel[0])]
    if not panels:
        return None
    figure, axes = _figure(5.5 * len(panels), 4.2, len(panels))
    for ax, (stages, level, xlabel, name, reason) in zip(axes, panels, strict=True):
        measured = []
        for stage in stages:
            points = sorted(
                (level(r), 1.0 / deployed_latency(r)) for r in data.stage(stage) if deployed_latency(r)
            )
            if points:
                xs, ys = zip(*points, strict=True)
                measured.extend(ys)
                ax.plot(
                    xs, ys, marker="o", color=STAGE_COLORS[stage], label=f"{STAGE_NAMES[stage]}: deployed"
                )
        if not measured:
            ax.text(0.5, 0.6, reason, ha="center", va="center", transform=ax.transAxes)
        ax.axhline(1.0, color="red", lw=1.5, label="original (torch eager fp32)")
        if level is _bits:
            _bit_ticks(ax, [row for stage in stages for row in data.stage(stage)])
        ax.set(
            xlabel=xlabel,
            ylabel="speedup of the fastest deployable form (x, > 1 faster)",
            title=f"Deployed speed vs. {name}",
        )
        ax.set_ylim(0, max(2.0, 1.15 * max(measured, default=1.0)))
        ax.legend(fontsize=8, loc="lower left")
    return figure


def sensitivity_heatmap(data: RunData) -> Figure | None:
    """Per-layer drop of the metric (worse = positive, in its display units) when only that layer is
    pruned (left) or quantized (right)."""
    rows = [row for row in data.stage("sensitivity") if "drop" in row.extra]
    if not rows:
        return None
    spec = data.metric
    layers = [row.extra["layer"] for row in rows]
    figure, axes = _figure(11.0, max(3.0, 1.6 + 0.32 * len(layers)), 2)
    panels = (
        ("amount", "share of the layer pruned", "Drop when one layer is pruned"),
        ("bits", "weight bits", "Drop when one layer is quantized"),
    )
    for ax, (axis, label, title) in zip(axes, panels, strict=True):
        levels = list(rows[0].extra["drop"][axis])
        values = [[spec.display(row.extra["drop"][axis][level]) for level in levels] for row in rows]
        top = max(1e-9 if spec.unit != "%" else 1.0, max(map(max, values)))
        image = ax.imshow(values, cmap="Reds", aspect="auto", vmin=0, vmax=top)
        ax.set_xticks(range(len(levels)), [f"{float(v):g}" for v in levels])
        ax.set_yticks(range(len(layers)), layers, fontsize=8)
        ax.grid(False)
        for i, row in enumerate(values):
            for j, value in enumerate(row):
                ax.text(
                    j,
                    i,
                    f"{value:.1f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if value > 0.6 * top else "black",
                )
        ax.set(xlabel=label, title=title)
        unit = " points" if spec.unit == "%" else (f" {spec.unit}" if spec.unit else "")
        figure.colorbar(
            image, ax=ax, shrink=0.8, label=f"validation {spec.label or spec.name} worse by{unit}"
        )
    return figure


def structured_metric(data: RunData) -> Figure | None:
    """Seed 003: the metric vs channels removed, one line per schedule and format."""
    rows = data.stage("structured")
    if not rows:
        return None
    figure, (ax,) = _figure()
    groups: dict[str, list[TrialRow]] = defaultdict(list)
    for row in rows:
        groups[f"{row.config['schedule']} {row.config['format'].upper()}"].append(row)
    for name, group in sorted(groups.items()):
        _series(ax, data, group, lambda r: 100 * r.config["amount"], name)
    _baseline_lines(ax, data)
    ax.set(
        xlabel="channels removed (%)",
        ylabel=_ylabel(data),
        title="Structured pruning: schedule x format",
    )
    _legend(ax)
    return figure


PLOTS: dict[str, tuple[Callable[[RunData], Figure | None], str]] = {
    "metric_vs_prune": (
        metric_vs_prune,
        "The task's metric vs. pruning ratio: post-training, aware fine-tuned at the "
        "original LR, and after refining at LR/10 (seed 000 Fig. 1/3, seed 002 Fig. 1).",
    ),
    "metric_vs_bits": (
        metric_vs_bits,
        "The task's metric vs. weight bits, post-training and aware (seed 000 Fig. 2).",
    ),
    "metric_vs_latency": (
        metric_vs_latency,
        "The task's metric vs. the runtime of each model's fastest deployable form (int8 ONNX, the "
        "physically smaller model on onnxruntime, or PT2E int8 where enabled) relative to the original in "
        "torch eager fp32, timed interleaved, with the Pareto front; the green circle is the original's "
        "fastest form, the star the combined best levels (seed 000 Fig. 4). Masked-only models have no "
        "faster form and are not shown.",
    ),
    "metric_vs_size": (
        metric_vs_size,
        "The task's metric vs. compressed file size with the Pareto front (Fig. 4).",
    ),
    "runtime_vs_level": (
        runtime_vs_level,
        "Deployed speed per pruning level and bit width: the speedup of each trial's fastest deployable "
        "form (int8 ONNX, the physically smaller model on onnxruntime, or PT2E int8 where enabled) over the "
        "original in torch eager fp32, timed interleaved in the trial (seed 000 Fig. 6). Masked zeros alone "
        "have no faster form: dense kernels run them at the original's speed, so no point is drawn for them.",
    ),
    "sensitivity": (
        sensitivity_heatmap,
        "Per-layer sensitivity: how much worse the validation metric gets when only one layer is "
        "pruned or quantized. Robust layers can be pruned harder (sensitivity allocation).",
    ),
    "structured": (structured_metric, "Structured pruning: the metric per schedule and format (seed 003)."),
}


def write_plots(data: RunData, folder: Path) -> list[Plot]:
    """Render every plot that has data into `folder` as PNG; return them in report order."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for key, (build, caption) in PLOTS.items():
        figure = build(data)
        if figure is None:
            continue
        path = folder / f"{key}.png"
        tmp = path.with_suffix(".tmp.png")
        figure.savefig(tmp, dpi=DPI)
        tmp.replace(path)
        written.append(Plot(key, path, caption))
    return written
