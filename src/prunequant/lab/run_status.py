"""Where a run stands: trial N of M, the stage, elapsed time and an ETA, and what a resume found done.

M counts the trials planned so far. Stages plan their trials when they start (later ones read earlier
results), so while later stages remain, M is shown as "M+". The ETA is the mean wall time of the trials
finished in this process times the planned trials still to run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from prunequant.lab.store import TrialRow
from prunequant.lab.trials import TrialSpec


class RunStatus:
    """Counts of a run's trials and stages, fed by the Observer events."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.stages: list[str] = []
        self.stage = ""
        self.finished: dict[str, bool] = {}  # trial id -> finished, for every trial planned so far
        self.resumed = 0
        self.durations: list[float] = []
        self._trial_started: float | None = None

    def run_started(self, stages: Sequence[str], rows: Sequence[TrialRow]) -> None:
        """The recipe's stages and the rows already in the store (a resumed run's finished trials)."""
        self.stages = list(stages)
        self.finished = {row.trial_id: row.finished for row in rows}
        self.resumed = sum(self.finished.values())

    def stage_started(self, stage: str, specs: Sequence[TrialSpec]) -> None:
        self.stage = stage
        for spec in specs:
            self.finished.setdefault(spec.trial_id, False)

    def trial_started(self, spec: TrialSpec) -> None:
        self.finished.setdefault(spec.trial_id, False)
        self._trial_started = self.clock()

    def trial_finished(self, row: TrialRow) -> None:
        self.finished[row.trial_id] = row.finished
        if self._trial_started is not None:
            self.durations.append(self.clock() - self._trial_started)
            self._trial_started = None

    @property
    def done(self) -> int:
        return sum(self.finished.values())

    @property
    def planned(self) -> str:
        """'M', or 'M+' while stages after the current one will plan more trials."""
        later = self.stage in self.stages and self.stages.index(self.stage) < len(self.stages) - 1
        return f"{len(self.finished)}{'+' if later or not self.stage else ''}"

    def resumed_line(self) -> str | None:
        """'resumed: K of M trials already done' when the store held finished trials, else None."""
        if not self.resumed:
            return None
        return f"resumed: {self.resumed} of {len(self.finished)} trials already done"

    def stage_text(self) -> str:
        """'stage 2/5 post_prune'."""
        if self.stage in self.stages:
            return f"stage {self.stages.index(self.stage) + 1}/{len(self.stages)} {self.stage}"
        return f"stage {self.stage}" if self.stage else "starting"

    def eta_seconds(self) -> float | None:
        """Seconds left for the planned trials not yet finished; None before a trial has finished here."""
        if not self.durations:
            return None
        left = len(self.finished) - self.done
        return left * sum(self.durations) / len(self.durations)

    def line(self, *, running: bool = False) -> str:
        """'trial 4/12+  stage 2/5 post_prune  elapsed 1m05s  ETA 3m20s' (trial = the running one or the
        last finished one)."""
        number = self.done + (1 if running else 0)
        eta, elapsed = self.eta_seconds(), duration(self.clock() - self.started)
        return (
            f"trial {number}/{self.planned}  {self.stage_text()}  elapsed {elapsed}"
            f"  ETA {'-' if eta is None else duration(eta)}"
        )


def duration(seconds: float) -> str:
    """'45s', '3m05s' or '2h07m'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
