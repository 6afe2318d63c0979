"""The bad-input table: command, exit code, one-line message, and the files that must stay untouched.

Every defect of issue 15 is a row here (or a test in the sibling files when it needs a process or a
signal). Each row runs the CLI in this process and checks: the exit code, exactly one line on stderr
matching the pattern, no traceback, and the same bytes in every protected file.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from .conftest import RECIPE, Work, call, snapshot, tally
from .crafted import CRAFTED

MODEL = ["--model", "small_cnn", "--model-kwargs", '{"width": 4}']
DATA = ["--dataset", "synthetic", "--limit", "64", "--batch-size", "32"]


@dataclass(frozen=True)
class Case:
    """One bad input: argv (built from the work folder), exit code, stderr pattern, protected files."""

    argv: Callable[[Work], list[str]]
    code: int
    message: str
    untouched: tuple[str, ...] = ("ck.pt",)
    absent: tuple[str, ...] = ()
    setup: Callable[[Work], None] | None = None


def _foreign_db(w: Work) -> None:
    (w.root / "d").mkdir()
    db = sqlite3.connect(w.root / "d" / "results.sqlite")
    db.execute("CREATE TABLE notes (id INTEGER, text TEXT)")
    db.execute("INSERT INTO notes VALUES (1, 'mine')")
    db.commit()
    db.close()


def _empty_db(w: Work) -> None:
    (w.root / "d").mkdir()
    (w.root / "d" / "results.sqlite").write_bytes(b"")


def _text_db(w: Work) -> None:
    (w.root / "d").mkdir()
    (w.root / "d" / "results.sqlite").write_text("hello, not a database\n" * 20)


def _other_app_db(w: Work) -> None:
    _foreign_db(w)
    db = sqlite3.connect(w.root / "d" / "results.sqlite")
    db.execute("PRAGMA application_id=1234")
    db.close()


def _state_dict(w: Work) -> None:
    import torch

    from prunequant.models import build

    model = build("small_cnn", num_classes=10, in_channels=3, input_size=32, width=4)
    torch.save(model.state_dict(), w.root / "sd.pt")


def _one_channel_ck(w: Work) -> None:
    from prunequant.models import build, save_checkpoint

    save_checkpoint(
        build("small_cnn", num_classes=10, in_channels=1, input_size=8, width=4), w.root / "c1.pt"
    )


def _lstm(w: Work) -> None:
    (w.root / "lstm_models.py").write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.rnn = torch.nn.LSTM(8, 16, batch_first=True)\n"
        "        self.head = torch.nn.Linear(16, 4)\n"
        "    def forward(self, x):\n"
        "        out, _ = self.rnn(x)\n"
        "        return self.head(out[:, -1])\n"
        "def net(**kwargs):\n"
        "    return Net()\n"
    )


def _a_file(name: str) -> Callable[[Work], None]:
    return lambda w: (w.root / name).write_text("keep me\n")


CASES: dict[str, Case] = {
    # 1. -o equal to an input
    "export-o-is-checkpoint": Case(
        lambda w: ["export", "--checkpoint", w.ck, "-o", w.ck], 2, r"is the input"
    ),
    "export-o-is-checkpoint-by-other-name": Case(
        lambda w: ["export", "--checkpoint", w.ck, "-o", "./sub/../ck.pt"], 2, r"is the input"
    ),
    "prune-o-is-checkpoint": Case(
        lambda w: ["prune", "--method", "magnitude", "--checkpoint", w.ck, "--amount", "0.5", "-o", w.ck],
        2,
        r"is the input",
    ),
    "quantize-o-is-checkpoint": Case(
        lambda w: ["quantize", "--checkpoint", w.ck, *DATA, "-o", w.ck], 2, r"is the input"
    ),
    "quantize-packed-is-checkpoint": Case(
        lambda w: ["quantize", "--checkpoint", w.ck, *DATA, "--packed", w.ck], 2, r"is the input"
    ),
    "quantize-o-equals-packed": Case(
        lambda w: ["quantize", "--checkpoint", w.ck, *DATA, "-o", "q.pt", "--packed", "q.pt"],
        2,
        r"are the same file",
        absent=("q.pt",),
    ),
    "profile-csv-is-checkpoint": Case(
        lambda w: ["profile", "--checkpoint", w.ck, "--no-latency", "--csv", w.ck], 2, r"is the input"
    ),
    "run-o-is-recipe": Case(
        lambda w: ["run", w.recipe(), "-o", w.p("recipe.toml")], 2, r"-o .* is the input", ("recipe.toml",)
    ),
    # 2. a results database that is not ours is refused and left as it is
    "run-foreign-sqlite": Case(
        lambda w: ["run", w.recipe(), "-o", w.p("d")],
        2,
        r"SQLite database of something else .*left untouched",
        ("d",),
        ("d/recipe.toml", "d/.prunequant.lock"),
        _foreign_db,
    ),
    "report-foreign-sqlite": Case(
        lambda w: ["report", w.p("d")], 2, r"something else", ("d",), ("d/report.md",), _foreign_db
    ),
    "run-empty-sqlite": Case(
        lambda w: ["run", w.recipe(), "-o", w.p("d")],
        2,
        r"empty \(0 bytes\)",
        ("d",),
        ("d/recipe.toml",),
        _empty_db,
    ),
    "report-empty-sqlite": Case(
        lambda w: ["report", w.p("d")], 2, r"empty \(0 bytes\)", ("d",), (), _empty_db
    ),
    "run-text-file-as-db": Case(
        lambda w: ["run", w.recipe(), "-o", w.p("d")],
        2,
        r"not a prunequant results database \(not an SQLite file\)",
        ("d",),
        (),
        _text_db,
    ),
    "report-other-application-db": Case(
        lambda w: ["report", w.p("d")], 2, r"another application", ("d",), (), _other_app_db
    ),
    "run-o-non-run-folder": Case(
        lambda w: ["run", w.recipe(), "-o", w.p("d")],
        2,
        r"not a prunequant run",
        ("d",),
        ("d/.prunequant.lock",),
        lambda w: ((w.root / "d").mkdir(), (w.root / "d" / "mine.txt").write_text("x")),
    ),
    # 3. explicit data folders: no silent fallback, no escaping
    "eval-missing-data-dir": Case(
        lambda w: ["eval", "--checkpoint", w.ck, *DATA, "--data-dir", "nope"],
        2,
        r"--data-dir nope does not exist",
    ),
    "train-missing-data-dir": Case(
        lambda w: ["train", *MODEL, *DATA, "--data-dir", "nope", "-o", "t.pt"],
        2,
        r"does not exist",
        absent=("t.pt",),
    ),
    "recipe-data-dir-escapes": Case(
        lambda w: ["run", w.recipe(base=_with_data_dir("../../etc")), "-o", "r"],
        2,
        r"data_dir = '\.\./\.\./etc' leaves the recipe's folder",
        absent=("r",),
    ),
    "recipe-data-dir-missing": Case(
        lambda w: ["run", w.recipe(base=_with_data_dir("/nonexistent/data")), "-o", "r"],
        2,
        r"data_dir /nonexistent/data does not exist",
        absent=("r",),
    ),
    "eval-data-dir-without-the-dataset": Case(
        lambda w: ["eval", "--checkpoint", w.ck, "--dataset", "fashion-mnist", "--data-dir", "empty"],
        2,
        r"the data folder empty holds no fashion-mnist data: expected the four IDX files "
        r"\(train-images-idx3-ubyte, .*; no other copy is used when data_dir \(CLI: --data-dir\) is given",
        setup=lambda w: (w.root / "empty").mkdir(),
    ),
    "recipe-data-dir-without-the-dataset": Case(
        lambda w: ["run", w.recipe(base=_fashion_in("empty")), "-o", "r"],
        2,
        r"holds no fashion-mnist data: expected the four IDX files .*\(recipe: \[data\] data_dir\) is given",
        absent=("r",),
        setup=lambda w: (w.root / "empty").mkdir(),
    ),
    "eval-data-dir-with-a-built-in-dataset": Case(
        lambda w: ["eval", "--checkpoint", w.ck, *DATA, "--data-dir", "empty"],
        2,
        r"dataset 'synthetic' is built in and reads no files, so data_dir empty would not be used; "
        r"drop data_dir \(CLI: --data-dir\)$",
        setup=lambda w: (w.root / "empty").mkdir(),
    ),
    "recipe-data-dir-with-a-built-in-dataset": Case(
        lambda w: ["run", w.recipe(base=_with_data_dir("empty")), "-o", "r"],
        2,
        r"dataset 'synthetic' is built in and reads no files, .*; "
        r"drop data_dir \(recipe: \[data\] data_dir\)$",
        absent=("r",),
        setup=lambda w: (w.root / "empty").mkdir(),
    ),
    "recipe-is-a-directory": Case(
        lambda w: ["run", w.p("rd"), "-o", "r"],
        2,
        r"is a directory",
        absent=("r",),
        setup=lambda w: (w.root / "rd").mkdir(),
    ),
    # 5. numbers: NaN, inf and out-of-range values are usage errors before any work
    "train-weight-decay-nan": Case(
        lambda w: ["train", *MODEL, *DATA, "--weight-decay", "nan", "-o", "t.pt"],
        2,
        r"finite",
        absent=("t.pt",),
    ),
    "train-lr-inf": Case(
        lambda w: ["train", *MODEL, *DATA, "--lr", "inf", "-o", "t.pt"], 2, r"finite", absent=("t.pt",)
    ),
    "train-epochs-negative": Case(
        lambda w: ["train", *MODEL, *DATA, "--epochs", "-1", "-o", "t.pt"], 2, r"--epochs", absent=("t.pt",)
    ),
    "train-diverges": Case(
        lambda w: ["train", *MODEL, *DATA, "--epochs", "1", "--lr", "1e30", "-o", "t.pt"],
        2,
        r"training diverged",
        absent=("t.pt",),
    ),
    "prune-amount-nan": Case(
        lambda w: ["prune", "--method", "magnitude", "--checkpoint", w.ck, "--amount", "nan"], 2, r"--amount"
    ),
    "prune-amount-too-big": Case(
        lambda w: ["prune", "--method", "magnitude", "--checkpoint", w.ck, "--amount", "1.5"],
        2,
        r"must be in \[0, 1\)",
    ),
    "prune-steps-zero": Case(
        lambda w: ["prune", "--method", "magnitude", "--checkpoint", w.ck, "--amount", "0.5", "--steps", "0"],
        2,
        r"--steps",
    ),
    "prune-amounts-nan": Case(
        lambda w: ["prune", "--method", "magnitude", "--checkpoint", w.ck, "--amounts", "0.1,nan"],
        2,
        r"finite",
    ),
    "prune-layer-amount-nan": Case(
        lambda w: ["prune", "--method", "magnitude", "--checkpoint", w.ck, "--layer-amount", "fc=nan"],
        2,
        r"PATTERN",
    ),
    "quantize-percentile-nan": Case(
        lambda w: ["quantize", "--checkpoint", w.ck, "--percentile", "nan"], 2, r"finite"
    ),
    "export-threads-negative": Case(
        lambda w: ["export", "--checkpoint", w.ck, "-o", "x.onnx", "--threads", "-2"],
        2,
        r"--threads",
        absent=("x.onnx",),
    ),
    "profile-repeats-zero": Case(
        lambda w: ["profile", "--checkpoint", w.ck, "--repeats", "0"], 2, r"--repeats"
    ),
    "bench-rounds-zero": Case(lambda w: ["bench", w.ck, "--rounds", "0"], 2, r"--rounds"),
    "seed-negative": Case(lambda w: ["eval", "--checkpoint", w.ck, *DATA, "--seed", "-1"], 2, r"--seed"),
    "batch-size-zero": Case(
        lambda w: ["eval", "--checkpoint", w.ck, "--dataset", "synthetic", "--batch-size", "0"],
        2,
        r"--batch-size",
    ),
    "input-shape-bad": Case(lambda w: ["profile", *MODEL, "--input-shape", "3x0x8"], 2, r"positive sizes"),
    "input-shape-mixed-names": Case(
        lambda w: ["profile", *MODEL, "--input-shape", "a=3x8x8", "--input-shape", "3x8x8"], 2, r"name every"
    ),
    # 8. outputs that cannot be written: refused before the work, nothing half-written
    "export-o-is-directory": Case(
        lambda w: ["export", "--checkpoint", w.ck, "-o", w.p("outdir")],
        2,
        r"is a directory",
        setup=lambda w: (w.root / "outdir").mkdir(),
    ),
    "export-o-under-a-file": Case(
        lambda w: ["export", "--checkpoint", w.ck, "-o", "plain.txt/x.onnx"],
        2,
        r"is a file, not a directory",
        ("ck.pt", "plain.txt"),
        setup=_a_file("plain.txt"),
    ),
    "quantize-packed-unwritable-keeps-no-output": Case(
        lambda w: ["quantize", "--checkpoint", w.ck, *DATA, "-o", "q.pt", "--packed", "plain.txt/q.pqz"],
        2,
        r"is a file, not a directory",
        ("ck.pt", "plain.txt"),
        ("q.pt",),
        _a_file("plain.txt"),
    ),
    "prune-sweep-dir-is-file": Case(
        lambda w: [
            "prune",
            "--method",
            "magnitude",
            "--checkpoint",
            w.ck,
            *DATA,
            "--amounts",
            "0.5",
            "--sweep-dir",
            "plain.txt",
        ],
        2,
        r"is a file; give a directory",
        ("ck.pt", "plain.txt"),
        setup=_a_file("plain.txt"),
    ),
    # 9. model / data mismatches: one line naming the model and the shapes
    "eval-shape-mismatch": Case(
        lambda w: ["eval", "--checkpoint", "c1.pt", *DATA],
        2,
        r"model 'small_cnn' failed in its forward pass on "
        r"inputs \d+x3x32x32 .*RuntimeError",
        ("c1.pt",),
        setup=_one_channel_ck,
    ),
    "profile-shape-mismatch": Case(
        lambda w: ["profile", "--checkpoint", w.ck, "--input-shape", "5,8,8", "--no-latency"],
        2,
        r"failed in its forward pass on inputs 1x5x8x8",
    ),
    "quantize-shape-mismatch": Case(
        lambda w: ["quantize", "--checkpoint", "c1.pt", *DATA],
        2,
        r"failed in its forward pass",
        ("c1.pt",),
        setup=_one_channel_ck,
    ),
    # 11. nothing pruned is an error unless --allow-partial
    "channel-prune-lstm-nothing-pruned": Case(
        lambda w: [
            "prune",
            "--method",
            "channel",
            "--model",
            "lstm_models:net",
            "--input-shape",
            "5,8",
            "--amount",
            "0.5",
            "-o",
            "p.pt",
        ],
        2,
        r"nothing was pruned|LSTM|cannot|not support",
        (),
        ("p.pt",),
        _lstm,
    ),
    "magnitude-everything-excluded": Case(
        lambda w: [
            "prune",
            "--method",
            "magnitude",
            "--checkpoint",
            w.ck,
            "--amount",
            "0.5",
            "--exclude",
            "*",
            "-o",
            "p.pt",
        ],
        2,
        r"nothing was pruned",
        absent=("p.pt",),
    ),
    # 13. messages that say the right thing
    "eval-plain-state-dict-asks-for-model": Case(
        lambda w: ["eval", "--checkpoint", "sd.pt", *DATA],
        2,
        r"plain state_dict; .*--model",
        ("sd.pt",),
        setup=_state_dict,
    ),
    "run-plain-state-dict-never-advises-a-missing-option": Case(
        lambda w: [
            "run",
            w.recipe(base=RECIPE.replace('arch = "small_cnn"', 'checkpoint = "sd.pt"')),
            "-o",
            "r",
        ],
        2,
        r"^(?!.*--model).*plain state_dict; pass model= \(recipe: \[model\] arch\)",
        ("sd.pt",),
        ("r",),
        _state_dict,
    ),
    "prune-schedule-of-another-method": Case(
        lambda w: _prune(w, "magnitude", "--schedule", "stepwise"),
        2,
        r"--schedule stepwise is not a schedule of --method magnitude; it takes oneshot, iterative, agp",
    ),
    "prune-option-of-another-method": Case(
        lambda w: _prune(w, "magnitude", "--round-to", "8", "-o", "p.pt"),
        2,
        r"--round-to is not used by --method magnitude \(it is for --method channel\); drop it",
        absent=("p.pt",),
    ),
    "prune-old-option-name-still-works": Case(
        lambda w: _prune(w, "channel", "--ignore", "*", "-o", "p.pt"),
        2,
        r"nothing was pruned",
        absent=("p.pt",),
    ),
    "checkpoint-missing": Case(
        lambda w: ["profile", "--checkpoint", "nope.pt"], 2, r"nope\.pt does not exist"
    ),
    "checkpoint-is-directory": Case(
        lambda w: ["profile", "--checkpoint", w.p("sub")],
        2,
        r"is a directory",
        setup=lambda w: (w.root / "sub").mkdir(),
    ),
    "report-not-a-run-dir": Case(
        lambda w: ["report", w.p("empty")],
        2,
        r"not a run directory",
        setup=lambda w: (w.root / "empty").mkdir(),
    ),
    "task-unknown": Case(
        lambda w: ["eval", "--checkpoint", w.ck, *DATA, "--task", "nosuchtask"], 2, r"nosuchtask"
    ),
    "model-kwargs-not-json": Case(
        lambda w: ["profile", *MODEL[:2], "--model-kwargs", "{width"], 2, r"JSON object"
    ),
}
for _name, (_build, _pattern) in CRAFTED.items():
    CASES[f"crafted-{_name}"] = Case(
        lambda w: ["profile", "--checkpoint", "bad.pt", "--no-latency"],
        2,
        _pattern,
        ("bad.pt",),
        ("pwned.txt",),
        lambda w, build=_build: build(w.root / "bad.pt"),
    )


def _prune(w: Work, method: str, *extra: str) -> list[str]:
    """`prune --method METHOD --checkpoint ck.pt --amount 0.5 EXTRA...`."""
    return ["prune", "--method", method, "--checkpoint", str(w.ck), "--amount", "0.5", *extra]


def _fashion_in(data_dir: str) -> str:
    """The test recipe on Fashion-MNIST read from `data_dir`."""
    data = '[data]\ndataset = "fashion-mnist"\ndata_dir = "' + data_dir + '"\n'
    return re.sub(r"\[data\]\n.*?\n\n", data + "\n", RECIPE, flags=re.S)


def _with_data_dir(data_dir: str) -> str:
    return RECIPE.replace('dataset = "synthetic"', f'dataset = "synthetic"\ndata_dir = "{data_dir}"')


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name: str, work: Work, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    case = CASES[name]
    monkeypatch.syspath_prepend(str(work.root))
    if case.setup is not None:
        case.setup(work)
    argv = case.argv(work)
    protected = [work.root / p for p in case.untouched]
    before = snapshot(protected)
    outcome = call(argv, capsys)
    after = snapshot(protected)
    damaged = before != after or any((work.root / p).exists() for p in case.absent)
    tally(outcome, case.code, damaged)
    assert "Traceback" not in outcome.err, outcome.err
    assert outcome.code == case.code, outcome.err
    assert len(outcome.lines) == 1, outcome.err
    assert __import__("re").search(case.message, outcome.lines[0]), outcome.lines[0]
    assert before == after, "a protected file changed"
    for path in case.absent:
        assert not (work.root / path).exists(), f"{path} was written"
    assert outcome.out == ""
