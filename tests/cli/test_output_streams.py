"""What goes where: tables on stdout never hard-wrapped on a pipe and in the --format asked for; progress on
stderr, --json included, unless --quiet; bench takes builtin: checkpoints."""

from __future__ import annotations

import csv
import io
import json

import pytest

from prunequant.cli.main import main

LONG = "a_layer_with_a_name_far_longer_than_any_terminal_of_eighty_columns_could_show_on_one_line_" * 2

MODULE = f"""
import torch
from torch import nn


class Wide(nn.Module):
    def __init__(self, num_classes=10, **_):
        super().__init__()
        self.{LONG} = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.head(getattr(self, "{LONG}")(x).mean((2, 3)))
"""


@pytest.fixture
def wide_model(tmp_path, monkeypatch) -> list[str]:
    (tmp_path / "wide_models.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return ["profile", "--model", "wide_models:Wide", "--input-shape", "3,8,8", "--no-latency"]


def test_a_table_on_a_pipe_keeps_each_row_on_one_line(wide_model, capsys) -> None:
    assert main(wide_model) == 0  # capsys's stdout is not a terminal, as a pipe
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if LONG in line)
    assert "TOTAL" in out and row.count("│") >= 8  # the whole row, every column, on one line


def test_format_markdown_and_csv(wide_model, capsys) -> None:
    assert main([*wide_model, "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:3] == ["group", "layers", "params"]
    assert [row[0] for row in rows[1:]] == [LONG, "head", "TOTAL"]
    assert main([*wide_model, "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| group | layers |") and lines[1].startswith("|---|")
    assert len(lines) == 2 + 3 and lines[2].startswith(f"| {LONG} |")


def test_json_stays_one_object_when_a_table_format_is_given(wide_model, capsys) -> None:
    assert main([*wide_model, "--format", "markdown", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"total", "groups", "layers"}


TRAIN = ["train", "--model", "lenet5", "--dataset", "synthetic", "--limit", "64", "--epochs", "2"]


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_goes_to_stderr_under_json_unless_quiet(tmp_path, capsys, monkeypatch, quiet) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats stderr as a terminal
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    argv = [*TRAIN, "-o", str(tmp_path / "m.pt"), "--json", *(["--quiet"] if quiet else [])]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["epochs"] == 2  # stdout: exactly the JSON object
    assert ("train" in err and "/2" in err) is not quiet, err[-300:]


def test_bench_takes_a_builtin_checkpoint_and_csv(capsys) -> None:
    argv = ["bench", "builtin:fashion-mnist", "--batch-size", "1", "--rounds", "1", "--repeats", "1"]
    argv += ["--warmup", "0", "--threads", "1", "--no-memory", "--no-reexec"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"][0]["model"] == "builtin:fashion-mnist" and report["rows"][0]["bytes"] > 0
    assert main([*argv, "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[1][0] == "builtin:fashion-mnist" and rows[1][1] == "1"


def test_a_sweep_table_as_csv(capsys) -> None:
    model = ["--model", "small_cnn", "--model-kwargs", '{"width": 4}', "--input-shape", "3,32,32"]
    argv = ["prune", "--method", "magnitude", "--amounts", "0,0.5", "--scope", "global", *model]
    argv += ["--dataset", "synthetic", "--limit", "64", "--latency-rounds", "0", "--format", "csv"]
    assert main(argv) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["scope"] for row in rows] == ["global", "global"]
    assert [float(row["amount"]) for row in rows] == [0.0, 0.5]
