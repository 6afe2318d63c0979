"""Bad inputs around `prunequant run`: two runs at once, stale locks, failed trials (exit 3), a kill inside
the atomic writer then resume, a deleted checkpoint, a damaged row, and SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prunequant.lab.lock import RunLock
from prunequant.lab.store_guard import LOCK_NAME

from .conftest import PRUNE, RECIPE, Work, call, snapshot, tally

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run (baseline + one post-prune trial), copied by each test that damages it."""
    root = tmp_path_factory.mktemp("finished")
    (root / "recipe.toml").write_text(RECIPE + PRUNE)
    code = _cli(["run", root / "recipe.toml", "-o", root / "run", "--quiet", "--no-report"]).returncode
    assert code == 0
    return root


def _cli(argv: list, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC}
    command = [sys.executable, "-m", "prunequant.cli.main", *map(str, argv)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, **kwargs)


def _slow_run(work: Work) -> tuple[list[str], dict[str, str]]:
    """A `prunequant run` command that takes long enough to be caught mid-run, and its environment."""
    slow = "\n[aware_prune]\namounts = [0.25, 0.5, 0.75]\nepochs = 3\nrefine_epochs = 1\n"
    recipe = work.recipe(slow, base=RECIPE.replace("size = 64", "size = 1024"))
    command = [
        sys.executable,
        "-m",
        "prunequant.cli.main",
        "run",
        str(recipe),
        "-o",
        work.p("run"),
        "--quiet",
    ]
    return command, {**os.environ, "PYTHONPATH": SRC}


def _copy(finished_run: Path, work: Work) -> Path:
    shutil.copytree(finished_run / "run", work.root / "run")
    shutil.copy(finished_run / "recipe.toml", work.root / "recipe.toml")
    return work.root / "run"


def test_second_run_on_a_locked_directory_names_the_holder(work: Work, capsys) -> None:
    recipe = work.recipe()
    with RunLock(work.root / "run"):
        before = snapshot([work.root / "run"])
        outcome = call(["run", recipe, "-o", work.p("run"), "--quiet"], capsys)
        damaged = snapshot([work.root / "run"]) != before
    tally(outcome, 2, damaged)
    assert outcome.code == 2 and len(outcome.lines) == 1, outcome.err
    assert f"in use by another prunequant run (pid {os.getpid()} on " in outcome.lines[0]
    assert not damaged and not (work.root / "run" / "results.sqlite").exists()


_WARM_CLI = (
    "import sys; from prunequant.cli.main import main; sys.stdin.readline(); sys.exit(main(sys.argv[1:]))"
)
"""The CLI with its imports done before it reads a line: started on cue, it reaches the lock at once (a cold
start spends seconds importing torch, and a fast first run could finish in that time)."""


def test_two_processes_on_one_directory_do_not_repeat_trials(work: Work) -> None:
    command, env = _slow_run(work)
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    second = subprocess.Popen([sys.executable, "-c", _WARM_CLI, *command[3:]], env=env, **pipes)
    first = subprocess.Popen([*command, "--no-report"], env=env, stderr=subprocess.PIPE, text=True)
    lock = work.root / "run" / LOCK_NAME
    deadline = time.monotonic() + 120
    while (
        not (lock.exists() and lock.stat().st_size) and time.monotonic() < deadline and first.poll() is None
    ):
        time.sleep(0.02)
    assert first.poll() is None, "the first run ended before the second could start"
    _, err = second.communicate("go\n", timeout=300)
    first.wait(timeout=300)
    assert second.returncode == 2 and "in use by another prunequant run" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert first.returncode == 0, first.stderr.read()
    with sqlite3.connect(work.root / "run" / "results.sqlite") as db:
        attempts = [row[0] for row in db.execute("SELECT attempts FROM trials")]
    assert attempts and all(count == 1 for count in attempts)


def test_a_database_the_lock_holder_is_still_creating_is_in_use_not_foreign(work: Work, capsys) -> None:
    """A run that holds the lock has created its SQLite file but no tables yet: a second run says the
    directory is in use (it said "an SQLite database of something else" when it looked at that moment)."""
    run = work.root / "run"
    run.mkdir()
    with RunLock(run):
        db = sqlite3.connect(run / "results.sqlite")
        db.execute("PRAGMA user_version = 1")  # a valid SQLite file, no tables yet
        db.close()
        outcome = call(["run", work.recipe(), "-o", work.p("run"), "--quiet", "--no-report"], capsys)
    assert outcome.code == 2 and "in use by another prunequant run" in outcome.err, outcome.err
    foreign = call(["run", work.recipe(), "-o", work.p("run"), "--quiet", "--no-report"], capsys)
    assert foreign.code == 2 and "SQLite database of something else" in foreign.err  # once nobody holds it


def test_stale_lock_of_a_killed_run_is_taken_over(work: Work, capsys) -> None:
    (work.root / "run").mkdir()
    stale = {"pid": 999_999_999, "host": "elsewhere", "started": 0, "argv": ["prunequant", "run"]}
    (work.root / "run" / LOCK_NAME).write_text(json.dumps(stale))
    outcome = call(["run", work.recipe(), "-o", work.p("run"), "--quiet", "--no-report", "--json"], capsys)
    assert outcome.code == 0, outcome.err
    summary = json.loads(outcome.out)
    assert summary["lock"]["took_over"]["pid"] == 999_999_999


def test_failed_trials_exit_3_and_are_counted(work: Work, capsys, monkeypatch) -> None:
    import prunequant.lab.runner as runner

    real = runner.run_trial

    def flaky(task, callbacks):
        if task.spec.stage != "profile":
            raise RuntimeError("injected trial failure")
        return real(task, callbacks)

    monkeypatch.setattr(runner, "run_trial", flaky)
    outcome = call(["run", work.recipe(), "-o", work.p("run"), "--quiet", "--no-report"], capsys)
    tally(outcome, 3, False)
    assert outcome.code == 3, outcome.err
    text = " ".join(outcome.out.split())
    assert "1 failed" in text and "exit code 3" in text


def test_kill_inside_the_atomic_writer_then_resume_leaves_no_orphan(work: Work) -> None:
    recipe = work.recipe()
    script = (
        "import os, signal, sys\n"
        "real = os.replace\n"
        "def replace(src, dst, *a, **k):\n"
        "    if 'checkpoints' in str(dst) and not str(dst).endswith(('.sqlite',)):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(src, dst, *a, **k)\n"
        "os.replace = replace\n"
        "from prunequant.cli.main import main\n"
        f"sys.exit(main(['run', {str(recipe)!r}, '-o', {work.p('run')!r}, '--quiet', '--no-report']))\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    orphans = [p for p in (work.root / "run").rglob("*.tmp*")]
    assert orphans, "the kill should have left the writer's temp file"
    again = _cli(["run", recipe, "-o", work.p("run"), "--quiet", "--no-report", "--json"])
    assert again.returncode == 0, again.stderr
    assert not list((work.root / "run").rglob("*.tmp*"))
    summary = json.loads(again.stdout)
    assert summary["failed"] == 0 and summary["lock"]["orphans_removed"]


def test_deleted_checkpoint_of_a_finished_trial_is_one_line(finished_run: Path, work: Work, capsys) -> None:
    run = _copy(finished_run, work)
    for path in (run / "checkpoints").iterdir():
        path.unlink()
    recipe = work.recipe(PRUNE + "\n[post_quant]\nbits = [8]\n")
    outcome = call(["run", recipe, "-o", run, "--quiet", "--no-report"], capsys)
    tally(outcome, 2, False)
    assert outcome.code in (2, 3) and "Traceback" not in outcome.err, outcome.err
    if outcome.code == 2:
        assert len(outcome.lines) == 1 and "checkpoints" in outcome.lines[0]


def test_malformed_json_in_a_row_is_one_line(finished_run: Path, work: Work, capsys) -> None:
    run = _copy(finished_run, work)
    with sqlite3.connect(run / "results.sqlite") as db:
        db.execute("UPDATE trials SET config='{not json' WHERE stage='profile'")
    db.close()
    before = snapshot([run / "results.sqlite"])
    outcome = call(["report", run], capsys)
    damaged = snapshot([run / "results.sqlite"]) != before
    tally(outcome, 2, damaged)
    assert outcome.code == 2 and len(outcome.lines) == 1, outcome.err
    assert "malformed JSON" in outcome.lines[0] and not damaged


def test_sigterm_is_a_clean_interrupt_and_the_run_resumes(work: Work) -> None:
    command, env = _slow_run(work)
    command.append("--no-report")
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    db = work.root / "run" / "results.sqlite"
    deadline = time.monotonic() + 200
    while time.monotonic() < deadline and process.poll() is None:
        if db.exists():
            connection = sqlite3.connect(db, timeout=5)
            try:
                if connection.execute("SELECT COUNT(*) FROM trials WHERE status='done'").fetchone()[0]:
                    break
            except sqlite3.OperationalError:  # the table is not created yet
                pass
            finally:
                connection.close()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    lines = err.strip().splitlines()
    assert (
        "Traceback" not in err and len(lines) == 1 and lines[0].endswith("rerun the same command to resume")
    )
    again = _cli(command[3:])
    assert again.returncode == 0, again.stderr
