import sqlite3

import pytest

from prunequant.atomic import atomic_write
from prunequant.lab.store import METRIC_COLUMNS, ResultsStore


@pytest.fixture
def store(tmp_path):
    with ResultsStore(tmp_path / "results.sqlite") as opened:
        yield opened


def test_the_trials_table_has_the_documented_columns(store):
    columns = [row[1] for row in sqlite3.connect(store.path).execute("PRAGMA table_info(trials)")]
    assert columns[:7] == ["trial_id", "stage", "label", "config", "status", "error", "attempts"]
    assert columns[7 : 7 + len(METRIC_COLUMNS)] == list(METRIC_COLUMNS)
    for name in (
        "score",
        "loss",
        "metrics",
        "params",
        "nonzero_params",
        "macs",
        "weight_mb",
        "activation_mb",
        "pd",
        "file_bytes",
        "latency_fp32_ms",
        "latency_int8_ms",
    ):
        assert name in columns
    assert columns[-6:] == ["started_at", "finished_at", "duration_s", "checkpoint", "extra", "seq"]


def test_a_trial_goes_pending_running_done(store):
    store.add([("a1", "post_prune", "post prune 10%", {"amount": 0.1}), ("b2", "post_quant", "8-bit", {})])
    assert [row.status for row in store.rows()] == ["pending", "pending"]
    store.start("a1")
    assert store.get("a1").status == "running" and store.get("a1").attempts == 1
    store.finish(
        "a1",
        {"score": 0.75, "metrics": {"top1": 0.75}, "params": 100},
        extra={"note": "x"},
        checkpoint="checkpoints/a1.pt",
        duration_s=1.5,
    )
    row = store.get("a1")
    assert (row.status, row.get("top1"), row.get("params"), row.get("pd")) == ("done", 0.75, 100, None)
    assert (row.extra, row.checkpoint, row.duration_s, row.config) == (
        {"note": "x"},
        "checkpoints/a1.pt",
        1.5,
        {"amount": 0.1},
    )
    assert store.counts() == {"pending": 1, "running": 0, "done": 1, "pruned": 0, "failed": 0}


def test_adding_a_known_trial_keeps_its_result_and_order(store):
    store.add([("a1", "s", "first", {})])
    store.start("a1")
    store.finish("a1", {"score": 0.5})
    store.add([("z9", "s", "new", {}), ("a1", "s", "renamed", {"other": 1})])
    rows = store.rows()
    assert [(r.trial_id, r.label, r.status) for r in rows] == [
        ("a1", "first", "done"),
        ("z9", "new", "pending"),
    ]


def test_a_restarted_trial_counts_attempts_and_clears_its_error(store):
    store.add([("a1", "s", "t", {})])
    store.start("a1")
    store.fail("a1", "ValueError: bad\nthing   here")
    assert store.get("a1").error == "ValueError: bad thing here"
    store.start("a1")
    row = store.get("a1")
    assert (row.status, row.error, row.attempts) == ("running", None, 2)


def test_finish_refuses_columns_that_do_not_exist(store):
    store.add([("a1", "s", "t", {})])
    with pytest.raises(KeyError, match="speed"):
        store.finish("a1", {"speed": 1.0})
    with pytest.raises(ValueError, match="status"):
        store.finish("a1", {}, status="failed")


def test_rows_filter_by_stage_and_status_and_meta_round_trips(store):
    store.add([("a", "x", "a", {}), ("b", "y", "b", {}), ("c", "x", "c", {})])
    store.start("c")
    store.finish("c", {})
    assert [r.trial_id for r in store.rows("x")] == ["a", "c"]
    assert [r.trial_id for r in store.rows("x", "done")] == ["c"]
    store.set_meta("recipe", {"run": {"seed": 3}})
    assert store.get_meta("recipe") == {"run": {"seed": 3}} and store.get_meta("missing") is None


def test_a_file_that_is_not_a_database_is_a_config_error(tmp_path):
    path = tmp_path / "results.sqlite"
    path.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(Exception, match="not a prunequant results database"):
        ResultsStore(path)


def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "deep" / "file.bin"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]
