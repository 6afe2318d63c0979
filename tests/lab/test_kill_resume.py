"""A REAL kill: SIGKILL the `prunequant run` process mid-sweep, run the same command again, lose nothing."""

import signal
import sqlite3
import subprocess
import sys
import time

from prunequant.lab import ResultsStore

SWEEP = """
[aware_prune]
amounts = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
epochs = 1
refine_epochs = 1
"""


def _statuses(db) -> list[str]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return [row[0] for row in connection.execute("SELECT status FROM trials")]
    except sqlite3.OperationalError:  # the table is not created yet
        return []


def _command(recipe, run_dir) -> list[str]:
    return [
        sys.executable,
        "-m",
        "prunequant.cli.main",
        "run",
        str(recipe),
        "-o",
        str(run_dir),
        "--quiet",
        "--no-report",
    ]


def test_killed_run_resumes_without_losing_or_repeating_work(recipe_file, tmp_path):
    recipe, run_dir = recipe_file(SWEEP), tmp_path / "run"
    db = run_dir / "results.sqlite"
    process = subprocess.Popen(_command(recipe, run_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while _statuses(db).count("done") < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()[-2000:]
    with ResultsStore(db) as store:
        before = {row.trial_id: row for row in store.rows()}
    assert len(before) == 7
    finished_before = {t for t, row in before.items() if row.status == "done"}
    interrupted = {t for t, row in before.items() if row.status == "running"}
    assert 2 <= len(finished_before) < 7 and len(interrupted) <= 1

    again = subprocess.run(_command(recipe, run_dir), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    with ResultsStore(db) as store:
        after = store.rows()
        counts = store.counts()
    assert counts == {"pending": 0, "running": 0, "done": 7, "pruned": 0, "failed": 0}
    assert len({row.trial_id for row in after}) == len(after) == 7
    for row in after:
        if row.trial_id in finished_before:  # kept as it was, not redone
            assert (row.attempts, row.finished_at) == (1, before[row.trial_id].finished_at)
        expected = 2 if row.trial_id in interrupted else 1
        assert row.attempts == expected
        assert (run_dir / row.checkpoint).is_file()
    files = sorted(path.name for path in (run_dir / "checkpoints").iterdir())
    assert files == sorted(f"{row.trial_id}.pt" for row in after)
    assert not [path for path in run_dir.rglob("*.tmp")]
