"""The results database of a run: `runs/NAME/results.sqlite`, one row per trial, measurements as columns.

The columns do not depend on the task: `score` and `val_score` hold the budget metric, `metrics` every
metric of the task (JSON, by name); meta "task" describes the metrics (name, unit, direction, label).

Table `trials` (every write is one transaction; a killed run leaves rows that are pending, running or
finished, never half-written):

| column           | type    | meaning                                                                  |
|------------------|---------|--------------------------------------------------------------------------|
| trial_id         | TEXT PK | stable hash of (stage, config): the same configuration is never run twice |
| stage            | TEXT    | profile, post_prune, aware_prune, post_quant, aware_quant, combine, ...  |
| label            | TEXT    | human name, e.g. "aware prune 10% @ lr 0.01"                             |
| config           | TEXT    | the trial's configuration, canonical JSON                                |
| status           | TEXT    | pending, running, done, pruned (stopped early by the search), failed     |
| error            | TEXT    | one-line reason of a failed trial                                        |
| attempts         | INTEGER | how many times the trial was started (a killed run redoes `running`)     |
| score            | REAL    | the budget metric ([task] metric, default the primary) on the test split |
| loss             | REAL    | the task's mean loss on the test split                                   |
| metrics          | TEXT    | JSON {metric name: test value} of every metric of the task               |
| val_score        | REAL    | the budget metric on the validation split (used for every selection)     |
| params           | INTEGER | parameters                                                               |
| nonzero_params   | INTEGER | parameters that are not zero (pruning, and zeros made by quantization)   |
| macs             | INTEGER | multiply-accumulates per sample (dense); effective_macs skips zeros      |
| effective_macs   | INTEGER |                                                                          |
| w_bits, a_bits   | INTEGER | weight / activation bit width (32: float)                                |
| weight_mb        | REAL    | weight memory in Mb (megabits) at w_bits, zeros not stored               |
| activation_mb    | REAL    | activation memory in Mb at a_bits                                        |
| pd               | REAL    | performance density: score % / (weight_mb + activation_mb) (seed 003);   |
|                  |         | only for a higher-is-better fraction metric (accuracy, mIoU)             |
| file_bytes       | INTEGER | size of the compressed model file                                        |
| latency_fp32_ms  | REAL    | the original only: its median torch eager fp32 latency at deploy_batch   |
|                  |         | (runs before deployable forms: eager latency of every model)             |
| speedup          | REAL    | the fastest deployable form's speedup over the original in torch eager   |
|                  |         | fp32 at deploy_batch (None: no form, e.g. masked zeros only); which      |
|                  |         | runtime it is and every form's figures are in extra["deploy"]            |
| latency_int8_ms  | REAL    | median onnxruntime int8 latency (export stage)                           |
| started_at       | REAL    | unix time of the last start                                              |
| finished_at      | REAL    | unix time it finished                                                    |
| duration_s       | REAL    | seconds the trial took                                                   |
| checkpoint       | TEXT    | checkpoint path relative to the run directory                            |
| extra            | TEXT    | JSON of stage-specific results (profile groups, sensitivity curves, ...) |
|                  |         | and, for the baseline and every model trial, "deploy" (lab/forms.py):    |
|                  |         | {kind, batch, forms: [{runtime, file, precision, method, bytes, score,   |
|                  |         | val_score, metrics, first_call_s, speed: {batch: {speedup, p10, p90,     |
|                  |         | median_ms, original_ms, noisy, runtime (what ran it)}}, error?}],        |
|                  |         | conditions: {threads, rounds, repeats, load_avg, under_load,             |
|                  |         | malloc_tuned}, no_speed_gain?}; a pt2e-int8 form adds quantizer, source, |
|                  |         | calibration and scored                                                   |

Table `meta` (key TEXT PK, value TEXT JSON) holds the recipe, its context hash, the task ("task":
Task.describe()), the budget ("budget": metric, max_drop, relative), the best trial and runtime ("best",
"best_runtime") and the model card of what was shipped to ship/ ("ship").
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prunequant.errors import StoreError
from prunequant.lab.sections import MAX_BITS as MAX_BITS  # how stored trial formats read (re-exported)
from prunequant.lab.sections import parse_format as parse_format
from prunequant.lab.store_guard import check_store_file, mark_store, open_error

SPARSITY_STAGE = "slimming"
"""The stage of the sparsity-training trial, whichever stage asks for it (so they share one trial)."""
NEAR_ZERO = 1e-2
"""|gamma| below this counts as near zero in the recorded statistics."""


def percent(amount: float) -> str:
    """An amount as it appears in trial labels: 0.5 -> '50%'."""
    return f"{100 * amount:g}%"


METRIC_COLUMNS = {
    "score": "REAL",
    "loss": "REAL",
    "metrics": "TEXT",
    "val_score": "REAL",
    "params": "INTEGER",
    "nonzero_params": "INTEGER",
    "macs": "INTEGER",
    "effective_macs": "INTEGER",
    "w_bits": "INTEGER",
    "a_bits": "INTEGER",
    "weight_mb": "REAL",
    "activation_mb": "REAL",
    "pd": "REAL",
    "file_bytes": "INTEGER",
    "latency_fp32_ms": "REAL",
    "speedup": "REAL",
    "latency_int8_ms": "REAL",
}
"""Metric columns a trial may fill; anything else a trial reports goes to `extra`."""

MODEL_STAGES = (
    "post_prune",
    "aware_prune",
    "post_quant",
    "aware_quant",
    "combine",
    "structured",
    "joint",
    "iterative",
    "slimming",
    "layer_prune",
    "search",
)
"""Stages whose trials are candidate models (profile is the baseline; the others measure or deploy)."""

DB_NAME = "results.sqlite"
FINISHED = ("done", "pruned")
STATUSES = ("pending", "running", *FINISHED, "failed")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY, stage TEXT NOT NULL, label TEXT NOT NULL, config TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', error TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    {", ".join(f"{name} {kind}" for name, kind in METRIC_COLUMNS.items())},
    started_at REAL, finished_at REAL, duration_s REAL, checkpoint TEXT, extra TEXT,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class TrialRow:
    """One row of `trials`, with config and extra decoded from JSON."""

    trial_id: str
    stage: str
    label: str
    config: dict[str, Any]
    status: str
    error: str | None
    attempts: int
    metrics: dict[str, Any]
    started_at: float | None
    finished_at: float | None
    duration_s: float | None
    checkpoint: str | None
    extra: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        """A measurement by column name, or a task metric by name (test split); None when not measured."""
        value = self.metrics[key] if key in self.metrics else (self.metrics.get("metrics") or {}).get(key)
        return default if value is None else value

    def cost(self, objective: str) -> float | None:
        """What `objective` minimises: "size" the file bytes, "latency" the runtime relative to the
        original (1 / speedup of the fastest deployable form, timed interleaved within the trial, so
        machine load cancels out); None if unmeasured."""
        if objective == "size":
            return self.get("file_bytes")
        speedup = self.get("speedup")
        return 1.0 / speedup if speedup else None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-ready dict: identity, status, every metric, timings and extra."""
        return {
            "trial_id": self.trial_id,
            "stage": self.stage,
            "label": self.label,
            "status": self.status,
            "error": self.error,
            **self.metrics,
            "duration_s": self.duration_s,
            "checkpoint": self.checkpoint,
            "config": self.config,
            "extra": self.extra,
        }


class ResultsStore:
    """SQLite results database; every method is one transaction. Use as a context manager or close()."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        check_store_file(self.path)  # a database that is not ours is refused before it is opened
        try:
            if read_only:
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
                return
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            mark_store(self._db)
        except sqlite3.DatabaseError as exc:
            raise open_error(self.path, exc) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def add(self, trials: Iterable[tuple[str, str, str, dict[str, Any]]]) -> None:
        """Register (trial_id, stage, label, config) as pending; trials already present are left alone."""
        with self._transaction() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM trials").fetchone()[0]
            for offset, (trial_id, stage, label, config) in enumerate(trials, 1):
                db.execute(
                    "INSERT OR IGNORE INTO trials (trial_id, stage, label, config, seq) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (trial_id, stage, label, json.dumps(config, sort_keys=True), seq + offset),
                )

    def start(self, trial_id: str) -> None:
        """Mark a trial running (attempts + 1); a previous result or error is cleared."""
        with self._transaction() as db:
            db.execute(
                "UPDATE trials SET status='running', error=NULL, attempts=attempts+1, started_at=?, "
                "finished_at=NULL, duration_s=NULL WHERE trial_id=?",
                (time.time(), trial_id),
            )

    def finish(
        self,
        trial_id: str,
        metrics: dict[str, Any],
        *,
        status: str = "done",
        extra: dict[str, Any] | None = None,
        checkpoint: str | None = None,
        duration_s: float | None = None,
    ) -> None:
        """Record a finished trial's metrics (unknown keys are a bug: they belong in `extra`)."""
        unknown = set(metrics) - set(METRIC_COLUMNS)
        if unknown:
            raise KeyError(f"not metric columns: {sorted(unknown)}")
        if status not in FINISHED:
            raise ValueError(f"finish() status must be one of {FINISHED}, got {status!r}")
        columns = list(metrics)
        assignments = ", ".join(f"{name}=?" for name in columns)
        with self._transaction() as db:
            db.execute(
                f"UPDATE trials SET {assignments}{', ' if columns else ''}status=?, error=NULL, extra=?, "
                "checkpoint=?, finished_at=?, duration_s=? WHERE trial_id=?",
                (
                    *[_encode(metrics[c]) for c in columns],
                    status,
                    json.dumps(extra or {}, default=float),
                    checkpoint,
                    time.time(),
                    duration_s,
                    trial_id,
                ),
            )

    def fail(self, trial_id: str, error: str, duration_s: float | None = None) -> None:
        """Record a failed trial with a one-line reason."""
        line = " ".join(str(error).split())[:500]
        with self._transaction() as db:
            db.execute(
                "UPDATE trials SET status='failed', error=?, finished_at=?, duration_s=? WHERE trial_id=?",
                (line, time.time(), duration_s, trial_id),
            )

    def get(self, trial_id: str) -> TrialRow | None:
        """The row of `trial_id`, or None."""
        rows = self._select("WHERE trial_id=?", (trial_id,))
        return rows[0] if rows else None

    def rows(self, stage: str | None = None, status: str | None = None) -> list[TrialRow]:
        """Rows in insertion order, optionally of one stage and/or status."""
        clauses, params = [], []
        if stage is not None:
            clauses.append("stage=?")
            params.append(stage)
        if status is not None:
            clauses.append("status=?")
            params.append(status)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._select(where, tuple(params))

    def counts(self) -> dict[str, int]:
        """Number of trials per status."""
        found = dict(self._db.execute("SELECT status, COUNT(*) FROM trials GROUP BY status").fetchall())
        return {status: found.get(status, 0) for status in STATUSES}

    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def _select(self, where: str, params: tuple) -> list[TrialRow]:
        cursor = self._db.execute(f"SELECT * FROM trials {where} ORDER BY seq", params)
        names = [d[0] for d in cursor.description]
        return [_row(dict(zip(names, values, strict=True))) for values in cursor.fetchall()]


def _encode(value: Any) -> Any:
    """dict values (the `metrics` column) are stored as JSON."""
    return json.dumps(value, default=float) if isinstance(value, dict) else value


def _decode_column(name: str, value: Any) -> Any:
    return json.loads(value) if METRIC_COLUMNS[name] == "TEXT" and value is not None else value


def _row(record: dict[str, Any]) -> TrialRow:
    try:
        return _decode(record)
    except (ValueError, TypeError) as exc:  # a hand-edited or damaged row
        raise StoreError(
            f"trial {record.get('trial_id')!r} has malformed JSON in the results database ({exc})"
        ) from None


def _decode(record: dict[str, Any]) -> TrialRow:
    return TrialRow(
        trial_id=record["trial_id"],
        stage=record["stage"],
        label=record["label"],
        config=json.loads(record["config"]),
        status=record["status"],
        error=record["error"],
        attempts=record["attempts"],
        metrics={name: _decode_column(name, record[name]) for name in METRIC_COLUMNS},
        started_at=record["started_at"],
        finished_at=record["finished_at"],
        duration_s=record["duration_s"],
        checkpoint=record["checkpoint"],
        extra=json.loads(record["extra"]) if record["extra"] else {},
    )
