"""The error boundary itself: internal errors, --debug, hidden tool noise, valid JSON, atomic outputs."""

from __future__ import annotations

import errno
import json
import sqlite3
from pathlib import Path

import pytest

from prunequant.atomic import atomic_path, remove_orphans, temp_path
from prunequant.cli import profile_cmd
from prunequant.cli.boundary import classify
from prunequant.cli.jsonout import dump
from prunequant.errors import OutputError, StoreError
from prunequant.lab.store_guard import open_error
from prunequant.sweep_output import write_sweep_outputs

from .conftest import Work, call, snapshot, tally


def test_internal_error_is_one_line_exit_1_and_debug_shows_the_traceback(
    work: Work, capsys, monkeypatch
) -> None:
    def broken(args):
        return 1 / 0

    monkeypatch.setattr(profile_cmd, "run", broken)
    argv = ["profile", "--checkpoint", work.ck]
    outcome = call(argv, capsys)
    tally(outcome, 1, False)
    assert outcome.code == 1 and len(outcome.lines) == 1, outcome.err
    assert "internal error (ZeroDivisionError" in outcome.lines[0] and "--debug" in outcome.lines[0]
    debug = call([*argv, "--debug"], capsys)
    assert debug.code == 1 and "Traceback" in debug.err and "ZeroDivisionError" in debug.err


def test_third_party_output_is_hidden_unless_verbose(work: Work, capsys, monkeypatch) -> None:
    (work.root / "noisy_models.py").write_text(
        "import sys, warnings, torch\n"
        "def net(**kwargs):\n"
        "    print('GRAPH DUMP: lots of lines')\n"
        "    print('tool chatter', file=sys.stderr)\n"
        "    warnings.warn('a library warning')\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())\n"
    )
    monkeypatch.syspath_prepend(str(work.root))
    argv = ["profile", "--model", "noisy_models:net", "--input-shape", "3,8,8", "--no-latency", "--json"]
    quiet = call(argv, capsys)
    assert quiet.code == 0, quiet.err
    assert json.loads(quiet.out)["total"]["params"] > 0
    assert quiet.err == ""
    loud = call([*argv, "--verbose"], capsys)
    assert loud.code == 0 and json.loads(loud.out)
    assert "GRAPH DUMP" in loud.err and "tool chatter" in loud.err and "a library warning" in loud.err


def test_json_output_is_valid_with_nan(capsys) -> None:
    import io

    stream = io.StringIO()
    dump({"top1": float("nan"), "rows": [{"loss": float("inf")}], "ok": 1.0}, stream)
    data = json.loads(stream.getvalue())
    assert data["top1"] is None and data["rows"][0]["loss"] is None and data["ok"] == 1.0
    assert "NaN" in data["non_finite"]["top1"] and "infinite" in data["non_finite"]["rows[0].loss"]


def test_profile_csv_is_atomic_on_a_full_disk(work: Work, capsys, monkeypatch) -> None:
    from prunequant.profiling.report import ProfileReport

    csv = work.root / "layers.csv"
    csv.write_text("old,complete,file\n")

    def fails_half_way(self, path):
        Path(path).write_text("partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(ProfileReport, "to_csv", fails_half_way)
    outcome = call(["profile", "--checkpoint", work.ck, "--no-latency", "--csv", csv], capsys)
    tally(outcome, 2, csv.read_text() != "old,complete,file\n")
    assert outcome.code == 2 and len(outcome.lines) == 1, outcome.err
    assert "No space left on device" in outcome.lines[0] and "disk is full" in outcome.lines[0]
    assert csv.read_text() == "old,complete,file\n"
    assert sorted(p.name for p in work.root.iterdir()) == sorted(["ck.pt", "layers.csv"])


def test_sweep_outputs_appear_together_or_not_at_all(tmp_path: Path) -> None:
    rows = [{"amount": 0.5, "top1": 0.9}]
    (tmp_path / "sweep.md").write_text("old table\n")
    before = snapshot([tmp_path])

    def plot_fails(rows, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with pytest.raises(OutputError, match="No space left on device"):
        write_sweep_outputs(rows, tmp_path, stem="sweep", plot=plot_fails)
    assert snapshot([tmp_path]) == before and sorted(p.name for p in tmp_path.iterdir()) == ["sweep.md"]
    paths = write_sweep_outputs(
        rows, tmp_path, stem="sweep", plot=lambda rows, path: Path(path).write_bytes(b"png")
    )
    assert (
        Path(paths["csv"]).read_text().startswith("amount,top1") and Path(paths["png"]).read_bytes() == b"png"
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_atomic_path_and_orphans(tmp_path: Path) -> None:
    target = tmp_path / "a.png"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    orphan = temp_path(tmp_path / "sub" / "ck.pt")
    orphan.parent.mkdir()
    orphan.write_bytes(b"x")
    keep = tmp_path / "sub" / ".hidden.tmp"
    keep.write_text("not ours")
    assert remove_orphans(tmp_path) == [orphan]
    assert keep.exists() and not orphan.exists()


@pytest.mark.parametrize(
    "message, pattern",
    [
        ("database is locked", "locked by another process"),
        ("attempt to write a readonly database", "read-only"),
        ("database or disk is full", "free disk space"),
        ("disk I/O error", "check the disk"),
    ],
)
def test_store_errors_say_what_happened(message: str, pattern: str) -> None:
    error = open_error(Path("runs/x/results.sqlite"), sqlite3.OperationalError(message))
    assert isinstance(error, StoreError) and pattern in str(error)
    assert "not a prunequant results database" not in str(error)


def test_environment_errors_are_exit_2_with_the_path() -> None:
    code, line = classify(OSError(errno.EROFS, "Read-only file system", "/ro/x.pt"))
    assert code == 2 and "/ro/x.pt" in line and "read-only" in line.lower()
    code, line = classify(sqlite3.OperationalError("database is locked"))
    assert code == 2 and "locked" in line
    assert classify(KeyboardInterrupt())[0] == 130
