"""Nothing silent: every conv/linear/norm left at its size is named; removing nothing warns."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.pruning.structured import prune_channels


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.lstm = nn.LSTM(8, 6, batch_first=True)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        output, _ = self.lstm(torch.relu(self.embed(x)))
        return self.head(output)


def test_lstm_model_gets_named_skips_not_silence():
    with pytest.warns(UserWarning) as caught:
        result = prune_channels(Recurrent(), torch.randn(2, 5, 4), 0.5, return_result=True)
    assert {"embed", "lstm", "head"} <= set(result.skipped_layers)
    assert (
        "LSTM" in result.skipped_layers["lstm"]
        and "not a supported layer type" in result.skipped_layers["lstm"]
    )
    assert any("removed no channel" in str(w.message) for w in caught)


def test_layers_kept_by_the_amount_are_listed_with_that_reason():
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU(), nn.Conv2d(2, 4, 1), nn.ReLU(), nn.Conv2d(4, 1, 1))
    result = prune_channels(model, torch.randn(1, 3, 4, 4), 0.2, min_channels=2, return_result=True)
    assert "kept every channel" in result.skipped_layers["0"]
    assert "2" not in result.skipped_layers and "4" not in result.skipped_layers


def test_ignored_layers_are_named():
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 1, 1))
    with pytest.warns(UserWarning, match="removed no channel"):
        result = prune_channels(model, torch.randn(1, 3, 4, 4), 0.5, ignored_layers=["0"], return_result=True)
    assert result.skipped_layers == {"0": "matches ignored_layers", "2": "matches ignored_layers"}
