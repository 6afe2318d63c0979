"""`prunequant prune --method channel|layer`: JSON output, checkpoint round trip, fine-tuning, errors."""

from __future__ import annotations

import json

import pytest
import torch

from prunequant.cli import prune_cmd
from prunequant.cli.main import OneLineParser
from prunequant.errors import ConfigError
from prunequant.models import build, load_checkpoint
from prunequant.profiling import profile
from prunequant.pruning.structured import prune_channels


def run(*argv: str) -> dict:
    parser = OneLineParser(prog="prunequant")
    prune_cmd.add_parser(parser.add_subparsers(dest="command", parser_class=OneLineParser))
    args = parser.parse_args(["prune", *argv])
    result = args.run(args)
    return json.loads(json.dumps(result))


def test_channel_json_matches_the_api_and_reloads(tmp_path, capsys):
    out = tmp_path / "r20.pt"
    common = ("--model", "resnet20", "--input-shape", "3,8,8")
    result = run(
        "--method", "channel", "--amount", "0.5", *common, "--round-to", "8", "-o", str(out), "--json"
    )
    assert capsys.readouterr().out == ""
    expected = prune_channels(build("resnet20", input_size=8), torch.randn(2, 3, 8, 8), 0.5, round_to=8)
    x = torch.randn(1, 3, 8, 8)
    assert result["params_after"] == profile(expected, x, latency=False).total["params"]
    assert result["macs_after"] < result["macs_before"] / 3
    assert result["skipped_layers"] == [] and result["output"] == str(out)
    model, meta = load_checkpoint(out)
    assert meta["arch"] == "resnet20" and meta["pruning"]["importance"] == "l1"
    assert sum(p.numel() for p in model.parameters()) == result["params_after"]


def test_layer_method_on_a_checkpoint(tmp_path):
    out = tmp_path / "r20.pt"
    run(
        "--method",
        "channel",
        "--amount",
        "0.25",
        "--model",
        "resnet20",
        "--input-shape",
        "3,8,8",
        "-o",
        str(out),
    )
    result = run("--method", "layer", "--blocks", "2", "--checkpoint", str(out), "--json")
    assert result["pruning"]["removed_blocks"] and len(result["pruning"]["removed_blocks"]) == 2
    assert result["params_after"] < result["params_before"] and result["output"] is None


def test_dataset_gives_accuracy_and_fine_tune_numbers(tmp_path):
    result = run(
        "--method", "channel", "--amount", "0.5", "--importance", "apoz", "--model", "small_cnn",
        "--input-shape", "3,32,32", "--dataset", "synthetic", "--limit", "64", "--batch-size", "32",
        "--finetune-epochs", "1", "--calib-batches", "1", "--json",
    )  # fmt: skip
    assert all(0.0 <= result[key] <= 1.0 for key in ("accuracy_before", "accuracy_pruned", "accuracy_after"))
    assert result["finetune"]["finetuned_val_score"] is not None
    assert result["pruning"]["importance"] == "apoz"


def test_stepwise_schedule_prunes_during_fine_tuning():
    result = run(
        "--method", "channel", "--amount", "0.5", "--model", "small_cnn", "--input-shape", "3,32,32",
        "--dataset", "synthetic", "--limit", "64", "--batch-size", "16", "--finetune-epochs", "1",
        "--structured-schedule", "stepwise", "--json",
    )  # fmt: skip
    assert result["pruning"]["schedule"] == "stepwise" and result["pruning"]["pruning_steps"] >= 2
    assert result["params_after"] < 0.4 * result["params_before"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--method", "layer", "--model", "resnet20", "--input-shape", "3,8,8"), "needs --blocks"),
        (("--method", "channel", "--model", "resnet20", "--input-shape", "3,8,8"), "needs --amount"),
        (
            ("--method", "channel", "--amount", "1.5", "--model", "resnet20", "--input-shape", "3,8,8"),
            "amount",
        ),
        (
            (
                "--method",
                "channel",
                "--amount",
                "0.5",
                "--model",
                "resnet20",
                "--input-shape",
                "3,8,8",
                "--structured-schedule",
                "stepwise",
            ),
            "needs --dataset and --finetune-epochs",
        ),  # fmt: skip
    ],
)
def test_user_errors_are_config_errors(argv, message):
    with pytest.raises(ConfigError, match=message):
        run(*argv)


def test_group_amount_parses_pattern_and_value():
    with pytest.raises(SystemExit):
        run("--method", "channel", "--group-amount", "layer3.*=lots")
