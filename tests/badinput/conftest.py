"""Fixtures of the bad-input suite: a work folder with a tiny checkpoint, a recipe, and a counter of
outcomes (cases, tracebacks, non-2 exits for user error, files damaged) printed at the end of the run."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from prunequant.cli.main import main
from prunequant.models import build, save_checkpoint

from ..tiny_recipe import tiny_recipe

TALLY: Counter[str] = Counter()

RECIPE = tiny_recipe(max_drop=0.5, size=64, epochs=1, repeats=1)
"""The tiny recipe, quicker (one baseline epoch on 64 samples) and lenient (max_drop 0.5)."""

PRUNE = """
[post_prune]
amounts = [0.5]
"""


@dataclass
class Outcome:
    """What one CLI call did: exit code, stdout, stderr."""

    code: int
    out: str
    err: str
    lines: list[str] = field(default_factory=list)


@dataclass
class Work:
    """A case's folder: `ck.pt` (small_cnn, 3x32x32, synthetic), `recipe.toml`, and helpers."""

    root: Path

    @property
    def ck(self) -> Path:
        return self.root / "ck.pt"

    def p(self, name: str) -> str:
        return str(self.root / name)

    def recipe(self, extra: str = PRUNE, base: str = RECIPE, name: str = "recipe.toml") -> Path:
        path = self.root / name
        path.write_text(base + extra)
        return path


def snapshot(paths: list[Path]) -> dict[Path, str | None]:
    """sha256 of every file under `paths` (None: absent), to prove nothing was touched."""
    found: dict[Path, str | None] = {}
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            found[file] = hashlib.sha256(file.read_bytes()).hexdigest() if file.exists() else None
    return found


def call(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Outcome:
    """Run the CLI in this process and return what it did (argparse usage errors included)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return Outcome(code, out, err, [line for line in err.splitlines() if line.strip()])


def tally(outcome: Outcome, expected_code: int, damaged: bool) -> None:
    """Count the outcome for the closing summary."""
    TALLY["cases"] += 1
    TALLY["tracebacks"] += "Traceback" in outcome.err
    TALLY["non-2 exits for user error"] += expected_code == 2 and outcome.code != 2
    TALLY["files damaged"] += damaged


@pytest.fixture(scope="session")
def checkpoint_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("ck") / "ck.pt"
    model = build("small_cnn", num_classes=10, in_channels=3, input_size=32, width=4)
    save_checkpoint(model, path, dataset="synthetic")
    return path.read_bytes()


@pytest.fixture
def work(tmp_path: Path, checkpoint_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> Work:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ck.pt").write_bytes(checkpoint_bytes)
    return Work(tmp_path)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001 - pytest hook
    if TALLY["cases"]:
        counts = ", ".join(
            f"{key} {TALLY[key]}"
            for key in ("cases", "tracebacks", "non-2 exits for user error", "files damaged")
        )
        terminalreporter.write_line(f"bad-input suite: {counts}")
