"""A classifier at or below chance level is named in EvalResult.warnings, a UserWarning and the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from prunequant.cli.main import main
from prunequant.training import evaluate


class Constant(torch.nn.Module):
    """Always predicts class 0 of 10: 10% top-1 on balanced labels."""

    def forward(self, x):
        return torch.zeros(len(x), 10).index_fill_(1, torch.tensor([0]), 1.0)


def test_a_classifier_at_chance_is_named():
    loader = [(torch.randn(20, 3), torch.arange(20) % 10)]
    with pytest.warns(UserWarning, match="at chance level for 10 classes"):
        result = evaluate(Constant(), loader)
    assert result.top1 == 0.1 and len(result.warnings) == 1
    assert (
        "top1 10.0% is at chance level for 10 classes (chance 10.0%, warned at <= 15.0%)"
        in result.warnings[0]
    )


def test_a_classifier_above_chance_and_other_tasks_get_no_warning(
    regression_task, dense_model, dense_loaders
):
    loader = [(torch.randn(20, 3), torch.zeros(20, dtype=torch.long))]
    assert evaluate(Constant(), loader).warnings == ()  # 100%
    assert evaluate(dense_model, dense_loaders[1], regression_task).warnings == ()


def test_cli_quantize_reports_a_model_at_chance(capsys):
    argv = ["quantize", "--model", "lenet5", "--input-shape", "3,32,32", "--dataset", "synthetic"]
    assert main([*argv, "--limit", "64", "--calib-batches", "1", "--seed", "0", "--json"]) == 0
    output = json.loads(capsys.readouterr().out)
    assert output["top1"] <= 0.15 and "at chance level" in output["warnings"][0]
