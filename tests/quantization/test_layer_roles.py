"""Layers by role in quantize(): subclasses of torch's conv / linear classes are quantized as their base
class when they compute the same (or the same after their one padding child, which is kept); any other
subclass stays float, named with its reason. Conv1d / Conv3d are quantized too."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.models.checkpoint import load_checkpoint, save_checkpoint
from prunequant.quantization import QuantConv1d, QuantConv2d, QuantConv3d, QuantLinear, float_layers

from .int8_roundtrip import roundtrip


class Conv2dSame(nn.Conv2d):
    """'Same' padding by a child module, as in public EfficientNet ports (stride 1 or 2)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride, padding=0, bias=False)
        total = kernel - stride if kernel > stride else 0
        self.pad = nn.ZeroPad2d((total // 2, total - total // 2, total // 2, total - total // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.pad(x))


class PlainSubclass(nn.Conv2d):
    """A subclass that adds nothing."""


class StandardizedConv(nn.Conv2d):
    """Weight standardisation in forward: not a Conv2d of its own weight."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight - self.weight.mean(dim=(1, 2, 3), keepdim=True)
        return self._conv_forward(x, weight, self.bias)


class MyLinear(nn.Linear):
    pass


class Net(nn.Module):
    def __init__(self, first: type[nn.Module] = Conv2dSame, second: type[nn.Module] = Conv2dSame) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu1 = first(3, 8, 3, 2), nn.BatchNorm2d(8), nn.ReLU()
        self.conv2, self.bn2, self.relu2 = second(8, 8, 3, 1), nn.BatchNorm2d(8), nn.ReLU()
        self.fc = MyLinear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


SHAPE = (3, 9, 9)


def test_a_conv_subclass_with_a_padding_child_keeps_its_padding_and_runs_int8(tmp_path):
    torch.manual_seed(0)
    trip = roundtrip(Net(), SHAPE, tmp_path / "same.onnx")
    for name in ("conv1", "conv2"):
        layer = trip.qmodel.get_submodule(name)
        assert isinstance(layer, QuantConv2d) and layer.pre == "pad"
        assert isinstance(layer.pad, nn.ZeroPad2d)
    assert isinstance(trip.qmodel.fc, QuantLinear)
    assert float_layers(trip.qmodel) == {}
    assert trip.result.layers == "int8: all 3 layers", trip.result.float_layers
    assert trip.max_diff < 0.02


def test_the_quantized_padding_subclass_reloads_from_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    qmodel = roundtrip(Net(), SHAPE, tmp_path / "same.onnx").qmodel
    save_checkpoint(qmodel, tmp_path / "q.pt")
    loaded, _ = load_checkpoint(tmp_path / "q.pt", model=Net())
    x = torch.randn(2, *SHAPE)
    with torch.no_grad():
        assert torch.equal(loaded(x), qmodel(x))


def test_a_subclass_that_adds_nothing_is_quantized_as_its_base(tmp_path):
    torch.manual_seed(0)
    trip = roundtrip(Net(PlainSubclass, PlainSubclass), SHAPE, tmp_path / "plain.onnx")
    assert isinstance(trip.qmodel.conv1, QuantConv2d) and trip.qmodel.conv1.pre is None
    assert trip.result.layers == "int8: all 3 layers"


def test_a_subclass_with_other_behaviour_stays_float_and_is_named(tmp_path):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="conv2: subclasses Conv2d but its forward computes"):
        trip = roundtrip(Net(Conv2dSame, StandardizedConv), SHAPE, tmp_path / "ws.onnx", warn=True)
    assert type(trip.qmodel.conv2) is StandardizedConv  # left as it was: its forward is kept
    assert "forward computes something else" in float_layers(trip.qmodel)["conv2"]
    assert trip.result.float_layers.keys() == {"conv2"}
    assert trip.result.layers.startswith("mixed: 2 of 3")
    assert trip.max_diff < 0.02


class Conv1d3d(nn.Module):
    def __init__(self, conv: type[nn.Module], norm: type[nn.Module]) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu = conv(2, 6, 3, padding=1), norm(6), nn.ReLU()
        self.conv2 = conv(6, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu(self.bn1(self.conv1(x))))


@pytest.mark.parametrize(
    ("conv", "norm", "wrapper", "shape"),
    [
        (nn.Conv1d, nn.BatchNorm1d, QuantConv1d, (2, 16)),
        (nn.Conv3d, nn.BatchNorm3d, QuantConv3d, (2, 4, 6, 6)),
    ],
    ids=["1d", "3d"],
)
def test_conv1d_and_conv3d_are_quantized_and_their_bn_folded_on_export(conv, norm, wrapper, shape, tmp_path):
    torch.manual_seed(0)
    trip = roundtrip(Conv1d3d(conv, norm), shape, tmp_path / "nd.onnx")
    assert isinstance(trip.qmodel.conv1, wrapper) and isinstance(trip.qmodel.conv2, wrapper)
    assert trip.ops.get("BatchNormalization", 0) == 0
    assert trip.max_diff < 0.02
