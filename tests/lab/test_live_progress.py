"""`run` progress on stderr (lab/live.py, lab/run_status.py): trial N/M, stage, elapsed and ETA; and
"resumed: K of M trials already done"."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

from prunequant.cli.main import main
from prunequant.lab.run_status import RunStatus, duration

PRUNE = "\n[post_prune]\namounts = [0.5]\n"


def _spec(trial_id: str, stage: str) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, stage=stage, label=trial_id)


def _row(trial_id: str, finished: bool = True) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, finished=finished)


def test_status_counts_trials_stages_and_eta() -> None:
    now = [0.0]
    status = RunStatus(clock=lambda: now[0])
    status.run_started(["profile", "post_prune"], [_row("a"), _row("b", finished=False)])
    assert status.resumed_line() == "resumed: 1 of 2 trials already done"
    status.stage_started("profile", [_spec("a", "profile"), _spec("b", "profile")])
    status.trial_started(_spec("b", "profile"))
    assert status.line(running=True).startswith("trial 2/2+  stage 1/2 profile  elapsed 0s  ETA -")
    now[0] = 30.0
    status.trial_finished(_row("b"))
    status.stage_started("post_prune", [_spec(c, "post_prune") for c in "cde"])
    assert status.line() == "trial 2/5  stage 2/2 post_prune  elapsed 30s  ETA 1m30s"
    assert [duration(s) for s in (5, 185, 7300)] == ["5s", "3m05s", "2h01m"]


def test_a_fresh_run_has_no_resume_line() -> None:
    status = RunStatus()
    status.run_started(["profile"], [])
    assert status.resumed_line() is None


def test_run_prints_progress_lines_then_says_resumed(tmp_path, capsys, recipe_file) -> None:
    recipe = recipe_file(PRUNE)
    argv = ["run", str(recipe), "-o", str(tmp_path / "run"), "--no-report", "--json"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["done"] == 2  # stdout: only the JSON, progress went to stderr
    assert "stage 1/2 profile: 1 trial" in err
    assert re.search(r"post prune 50%: done in \d+s.*\[trial 2/2  stage 2/2 post_prune  elapsed", err), err
    assert main(argv) == 0
    assert "resumed: 2 of 2 trials already done" in capsys.readouterr().err
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().err == ""
