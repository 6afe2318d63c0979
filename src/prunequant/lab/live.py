"""Progress of a run, on stderr: an Observer interface; on a terminal a rich live display (trial N/M, stage,
elapsed, ETA, recent trials, the current trial's bars, the best model so far), elsewhere one plain line
per stage and per finished trial; nothing with --quiet. A resumed run says how many trials were done."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from prunequant.lab.run_status import RunStatus, duration
from prunequant.lab.store import TrialRow
from prunequant.lab.trials import TrialSpec
from prunequant.progress import progress_active, set_progress
from prunequant.tasks import MetricSpec
from prunequant.training import Callback

if TYPE_CHECKING:
    from prunequant.training import Trainer

STATUS_STYLE = {"done": "green", "pruned": "yellow", "failed": "red", "running": "cyan", "pending": "dim"}


class Observer:
    """Receives the run's events; the base class ignores them (used for --quiet)."""

    def run_started(self, stages: Sequence[str], rows: Sequence[TrialRow]) -> None:
        """The recipe's stages, and the rows the store already holds (finished ones: a resume)."""

    def stage_started(self, stage: str, specs: Sequence[TrialSpec]) -> None: ...

    def trial_started(self, spec: TrialSpec) -> None: ...

    def trial_finished(self, row: TrialRow, best: TrialRow | None) -> None: ...

    def callbacks(self) -> list[Callback]:
        """Trainer callbacks that report the current trial's progress (local backend only)."""
        return []

    def close(self) -> None: ...


class _TrainProgress(Callback):
    """Feeds epoch and batch bars from the Trainer."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.epochs = progress.add_task("epochs", total=1, visible=False)
        self.batches = progress.add_task("batches", total=1, visible=False)

    def on_train_start(self, trainer: Trainer) -> None:
        self.progress.reset(self.epochs, total=max(1, trainer.config.epochs), visible=True)

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        self.progress.reset(self.batches, total=max(1, trainer._batches_per_epoch()), visible=True)

    def on_batch_end(self, trainer: Trainer, batch: int, loss: float) -> None:
        self.progress.advance(self.batches)

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        self.progress.advance(self.epochs)

    def hide(self) -> None:
        self.progress.update(self.epochs, visible=False)
        self.progress.update(self.batches, visible=False)


class LiveDisplay(Observer):
    """A rich Live view on stderr: recent trials, the current trial's bars, and the best so far."""

    def __init__(self, title: str, metric: MetricSpec, rows_shown: int = 12) -> None:
        self.title, self.metric, self.rows_shown = title, metric, rows_shown
        self.rows: dict[str, TrialRow] = {}
        self.stage, self.current, self.best = "", "", None
        self.status = RunStatus()
        self.bars = Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn())
        self.train = _TrainProgress(self.bars)
        self.console = Console(stderr=True)
        self._was_enabled = progress_active()
        set_progress(False)  # one live display at a time: the Trainer's own bars step aside
        self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def run_started(self, stages: Sequence[str], rows: Sequence[TrialRow]) -> None:
        self.status.run_started(stages, rows)
        resumed = self.status.resumed_line()
        if resumed:
            self.live.console.print(f"[bold]{self.title}[/]: {resumed}")
        self._refresh()

    def stage_started(self, stage: str, specs: Sequence[TrialSpec]) -> None:
        self.status.stage_started(stage, specs)
        self.stage = f"{stage} ({len(specs)} trials)"
        self._refresh()

    def trial_started(self, spec: TrialSpec) -> None:
        self.status.trial_started(spec)
        self.current = spec.label
        self._refresh()

    def trial_finished(self, row: TrialRow, best: TrialRow | None) -> None:
        self.status.trial_finished(row)
        self.rows[row.trial_id] = row
        self.best, self.current = best, ""
        self.train.hide()
        self._refresh()

    def callbacks(self) -> list[Callback]:
        return [self.train]

    def close(self) -> None:
        self.live.stop()
        set_progress(self._was_enabled)

    def _refresh(self) -> None:
        self.live.update(self._render())

    def _render(self) -> Group:
        table = Table(title=f"{self.title} - {self.stage}", title_justify="left", expand=False)
        for column in (
            "trial",
            "status",
            f"{self.metric.name} {self.metric.arrow}",
            "size KB",
            "speedup",
            "s",
        ):
            table.add_column(column, justify="left" if column in ("trial", "status") else "right")
        for row in list(self.rows.values())[-self.rows_shown :]:
            table.add_row(
                row.label,
                f"[{STATUS_STYLE.get(row.status, '')}]{row.status}",
                self.metric.format(row.get("score")),
                _num(row.get("file_bytes"), 1 / 1024, 1),
                _num(row.get("speedup"), 1, 2),
                _num(row.duration_s, 1, 1),
            )
        parts: list = [_StatusLine(self), table]
        if self.current:
            parts += [f"[cyan]running[/] {self.current}", self.bars]
        if self.best is not None:
            parts.append(
                f"[bold green]best so far[/] {self.best.label}: "
                f"{self.metric.name} {self.metric.format(self.best.get('score'))}, "
                f"{_num(self.best.get('file_bytes'), 1 / 1024, 1)} KB, "
                f"{_num(self.best.get('speedup'), 1, 2)}x speed"
            )
        return Group(*parts)


class _StatusLine:
    """'trial N/M  stage ...  elapsed ...  ETA ...', rendered afresh at every refresh of the live view."""

    def __init__(self, display: LiveDisplay) -> None:
        self.display = display

    def __rich__(self) -> Text:
        return Text(self.display.status.line(running=bool(self.display.current)), style="bold")


class LineLog(Observer):
    """Plain lines on stderr (a pipe, a log file, CI): the resume count, each stage, each finished trial."""

    def __init__(self, title: str, metric: MetricSpec) -> None:
        self.title, self.metric = title, metric
        self.status = RunStatus()

    def run_started(self, stages: Sequence[str], rows: Sequence[TrialRow]) -> None:
        self.status.run_started(stages, rows)
        resumed = self.status.resumed_line()
        if resumed:
            self._say(resumed)

    def stage_started(self, stage: str, specs: Sequence[TrialSpec]) -> None:
        self.status.stage_started(stage, specs)
        self._say(f"{self.status.stage_text()}: {len(specs)} trial{'s' if len(specs) != 1 else ''}")

    def trial_started(self, spec: TrialSpec) -> None:
        self.status.trial_started(spec)

    def trial_finished(self, row: TrialRow, best: TrialRow | None) -> None:
        self.status.trial_finished(row)
        took = "" if row.duration_s is None else f" in {duration(row.duration_s)}"
        score = f", {self.metric.name} {self.metric.format(row.get('score'))}" if row.status == "done" else ""
        self._say(f"{row.label}: {row.status}{took}{score}  [{self.status.line()}]")

    def _say(self, text: str) -> None:
        sys.stderr.write(f"{self.title}: {text}\n")
        sys.stderr.flush()


def make_observer(title: str, enabled: bool, metric: MetricSpec) -> Observer:
    """When `enabled`: a LiveDisplay of `metric` if stderr is a terminal, else a LineLog; else silent."""
    if not enabled:
        return Observer()
    if Console(stderr=True).is_terminal:
        return LiveDisplay(title, metric)
    return LineLog(title, metric)


def _num(value: float | None, scale: float, digits: int) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"
