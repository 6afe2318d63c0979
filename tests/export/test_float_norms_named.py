"""A normalization left float in the int8 graph (a BatchNorm that cannot fold into a conv, a GroupNorm) is
named with its reason in the export result, its JSON, the file's metadata and the summary."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from torch import nn

from prunequant.export.coverage import FLOAT_NORMS_KEY

from ..quantization.int8_roundtrip import roundtrip
from ..quantization.test_activation_quantizers import SHAPE, ConvAct


class PreActivation(nn.Module):
    """DenseNet's pattern: a concat feeds a BatchNorm, which no conv precedes, so it cannot be folded."""

    def __init__(self, norm: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.norm, self.relu = norm or nn.BatchNorm2d(8), nn.ReLU()
        self.conv3, self.fc = nn.Conv2d(8, 4, 1), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.conv3(self.relu(self.norm(torch.cat([x, self.conv2(x)], 1))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


@pytest.mark.parametrize(
    ("norm", "reason"),
    [(None, "BatchNorm not folded into a conv"), (nn.GroupNorm(2, 8), "runs in float")],
    ids=["batchnorm-after-concat", "groupnorm"],
)
def test_a_float_norm_is_named_in_result_json_metadata_and_summary(norm, reason, tmp_path):
    torch.manual_seed(0)
    trip = roundtrip(PreActivation(norm), SHAPE, tmp_path / "preact.onnx")
    result = trip.result
    assert list(result.float_norms) == ["norm"] and reason in result.float_norms["norm"]
    assert result.layers.endswith("; 1 norm float")
    assert result.to_dict()["float_norms"] == result.float_norms
    meta = {entry.key: entry.value for entry in onnx.load(result.output).metadata_props}
    assert json.loads(meta[FLOAT_NORMS_KEY]) == result.float_norms


def test_folded_norms_are_not_listed(tmp_path):
    torch.manual_seed(0)
    result = roundtrip(ConvAct(nn.ReLU), SHAPE, tmp_path / "folded.onnx").result
    assert result.float_norms == {} and result.layers == "int8: all 3 layers"
