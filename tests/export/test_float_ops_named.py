"""An op left float between a DequantizeLinear and a QuantizeLinear in the int8 graph (an activation with no
integer kernel in onnxruntime: Tanh, GELU) is named by its module, with its op types, in the export
result, its JSON, the file's metadata, the summary and the export warning."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from torch import nn

from prunequant.export.coverage import FLOAT_OPS_KEY

from ..quantization.int8_roundtrip import roundtrip
from ..quantization.test_activation_quantizers import SHAPE, ConvAct


class ConvTanh(nn.Module):
    """conv-Tanh-conv-ReLU-conv-ReLU: the Tanh sits between two integer convs, no pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.act = nn.Conv2d(3, 8, 3, padding=1), nn.Tanh()
        self.conv2, self.relu, self.conv3 = nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv3(self.relu(self.conv2(self.act(self.conv1(x))))))


def test_a_float_tanh_is_named_in_result_json_metadata_summary_and_warning(tmp_path):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="act: onnxruntime has no integer Tanh kernel"):
        trip = roundtrip(ConvTanh(), SHAPE, tmp_path / "tanh.onnx", warn=True)
    result = trip.result
    assert list(result.float_ops) == ["act"] and "runs in float" in result.float_ops["act"]
    assert result.float_layers == {} and result.float_norms == {}
    assert result.layers == "int8: all 3 layers; 1 op float"
    assert result.to_dict()["float_ops"] == result.float_ops
    meta = {entry.key: entry.value for entry in onnx.load(result.output).metadata_props}
    assert json.loads(meta[FLOAT_OPS_KEY]) == result.float_ops
    assert trip.max_diff < 0.02


class ChunkShuffle(nn.Module):
    """A ShuffleNetV2 unit: conv-ReLU, chunk, conv-ReLU on one half, concat, a channel shuffle sized by
    `x.size()`, conv-ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.branch = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(4, 4, 1)
        self.conv2, self.relu = nn.Conv2d(8, 4, 1), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        kept, changed = x.chunk(2, dim=1)
        x = torch.cat((kept, self.relu(self.branch(changed))), dim=1)
        batch, channels, height, width = x.size()
        x = x.view(batch, 2, channels // 2, height, width).transpose(1, 2).reshape(batch, -1, height, width)
        return self.relu(self.conv2(x))


def test_shape_arithmetic_is_not_a_float_op(tmp_path):
    """The Shape -> Gather -> Add / Div / Mul that size the chunk read no activation values: nothing is
    listed."""
    torch.manual_seed(0)
    trip = roundtrip(ChunkShuffle(), SHAPE, tmp_path / "shuffle.onnx")
    assert trip.result.float_ops == {} and trip.result.layers == "int8: all 3 layers"
    assert trip.max_diff < 0.02


def test_integer_activations_are_not_listed(tmp_path):
    torch.manual_seed(0)
    model = ConvTanh()
    model.act = nn.ReLU()
    result = roundtrip(model, SHAPE, tmp_path / "relu.onnx").result
    assert result.float_ops == {} and result.layers == "int8: all 3 layers"


def test_a_pool_before_flatten_and_linear_runs_as_an_integer_pool(tmp_path):
    """ConvAct pools, flattens and quantizes for its Linear: the pool output gets that Q's grid (exact), and
    onnxruntime fuses QLinearGlobalAveragePool instead of pooling in float."""
    torch.manual_seed(0)
    trip = roundtrip(ConvAct(nn.ReLU), SHAPE, tmp_path / "pool.onnx")
    assert trip.result.float_ops == {} and trip.result.layers == "int8: all 3 layers"
    assert trip.ops.get("QLinearGlobalAveragePool") == 1 and "GlobalAveragePool" not in trip.ops
    assert trip.max_diff < 1e-4


class MaxThenAverage(nn.Module):
    """conv-ReLU -> MaxPool -> global pool -> flatten -> Linear (the zoo's VGG head)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.relu, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Linear(8, 4)
        self.maxpool, self.avgpool = nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.maxpool(self.relu(self.conv(x)))), 1))


def test_a_pool_reading_a_dequantized_tensor_through_a_maxpool_is_integer(tmp_path):
    torch.manual_seed(0)
    trip = roundtrip(MaxThenAverage(), SHAPE, tmp_path / "vgg.onnx")
    assert trip.result.float_ops == {} and trip.result.layers == "int8: all 2 layers"
    assert trip.ops.get("QLinearGlobalAveragePool") == 1 and "GlobalAveragePool" not in trip.ops
    assert trip.max_diff < 1e-4


class PooledSkip(nn.Module):
    """conv-ReLU -> pool -> flatten, read by a Linear (through its input quantizer) and by a float sum."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.relu, self.head = nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(self.relu(self.conv(x)), 1), 1)
        return self.head(pooled) + pooled.sum(1, keepdim=True)


def test_a_pool_also_read_in_float_stays_float_and_is_named(tmp_path):
    """Quantizing the pool output would round what the float sum reads: the pool is left float, and named."""
    torch.manual_seed(0)
    trip = roundtrip(PooledSkip(), SHAPE, tmp_path / "skip.onnx")
    assert list(trip.result.float_ops) == ["GlobalAveragePool"] and trip.ops.get("GlobalAveragePool") == 1
    assert "other ops read it" in trip.result.float_ops["GlobalAveragePool"]
    assert trip.max_diff < 1e-4


class MeanHead(nn.Module):
    """conv-ReLU -> x.mean(dims) -> Linear: torchvision ShuffleNetV2's head (`x.mean([2, 3])`)."""

    def __init__(self, keepdim: bool = False) -> None:
        super().__init__()
        self.keepdim = keepdim
        self.conv, self.relu, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.relu(self.conv(x)).mean([-2, -1] if self.keepdim else [2, 3], keepdim=self.keepdim)
        return self.fc(torch.flatten(pooled, 1))


@pytest.mark.parametrize("keepdim", [False, True])
def test_a_spatial_mean_runs_as_an_integer_pool(keepdim, tmp_path):
    """ReduceMean becomes GlobalAveragePool (+ Flatten), then QLinearGlobalAveragePool: nothing float."""
    torch.manual_seed(0)
    trip = roundtrip(MeanHead(keepdim), SHAPE, tmp_path / "mean.onnx")
    assert trip.result.float_ops == {} and trip.result.layers == "int8: all 2 layers"
    assert trip.ops.get("QLinearGlobalAveragePool") == 1 and "ReduceMean" not in trip.ops
    assert trip.max_diff < 1e-4


class ChannelMean(MeanHead):
    """A mean over the channels is not a pool: it stays ReduceMean, float, and named."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x)).mean(1)


def test_a_mean_over_the_channels_stays_a_float_reduce_mean(tmp_path):
    torch.manual_seed(0)
    trip = roundtrip(ChannelMean(), SHAPE, tmp_path / "channel_mean.onnx")
    assert trip.ops.get("ReduceMean") == 1 and "GlobalAveragePool" not in trip.ops
