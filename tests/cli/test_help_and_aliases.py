"""--version, grouped --help sections, and one name per concept with the old names as hidden aliases."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib

import prunequant
from prunequant.cli.main import COMMANDS, build_parser, main
from prunequant.cli.options import shown_options

ROOT = Path(__file__).resolve().parents[2]


def _command(name: str):
    return build_parser()._subparsers._group_actions[0].choices[name]


def _mentions(text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def test_version_is_the_package_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert (
        capsys.readouterr().out.strip()
        == f"prunequant {project['version']}"
        == f"prunequant {prunequant.__version__}"
    )


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_sits_in_a_named_section(name: str) -> None:
    sections = shown_options(_command(name))
    assert sections.get("options", []) == ["-h", "--help"], sections.get("options")
    assert "general" in sections and "--json" in sections["general"]


def test_prune_help_is_grouped_by_concept() -> None:
    sections = shown_options(_command("prune"))
    for title, option in [
        ("model", "--checkpoint"),
        ("data", "--dataset"),
        ("what to prune", "--exclude"),
        ("what to prune", "--layer-amount"),
        ("schedule", "--schedule"),
        ("fine-tuning", "--finetune-epochs"),
        ("output", "-o"),
    ]:
        assert option in sections[title], (title, sections[title])


# (command, old name, canonical name, a value, the dest both fill)
ALIASES = [
    ("prune", "--ignore", "--exclude", "fc", "exclude"),
    ("prune", "--group-amount", "--layer-amount", "fc=0.3", "layer_amount"),
    ("prune", "--structured-schedule", "--schedule", "stepwise", "schedule"),
    ("train", "--schedule", "--lr-schedule", "step", "lr_schedule"),
    ("quantize", "--epochs", "--finetune-epochs", "3", "finetune_epochs"),
    ("bench", "--batch", "--batch-size", "1,8", "batch_size"),
]
REQUIRED = {
    "prune": ["prune", "--method", "channel"],
    "train": ["train", "--model", "lenet5", "--dataset", "synthetic", "-o", "x.pt"],
    "quantize": ["quantize"],
    "bench": ["bench", "a.pt"],
}


@pytest.mark.parametrize("command, old, new, value, dest", ALIASES)
def test_old_names_still_work_and_are_hidden(command, old, new, value, dest) -> None:
    parser = build_parser()
    via_old = parser.parse_args([*REQUIRED[command], old, value])
    via_new = parser.parse_args([*REQUIRED[command], new, value])
    assert getattr(via_old, dest) == getattr(via_new, dest)
    assert getattr(via_old, dest) != _command(command).get_default(dest)
    text = _command(command).format_help()
    assert _mentions(text, new) and not _mentions(text, old)


def test_report_takes_no_seed(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(tmp_path), "--seed", "1"])
    assert exit_.value.code == 2 and "unrecognized arguments: --seed" in capsys.readouterr().err


def test_eval_limit_is_about_the_scored_split() -> None:
    text = " ".join(_command("eval").format_help().split())
    assert "first N samples of --split" in text and "training samples" not in text
