"""A fully integer graph: residual sums and concatenations made inside a block's forward are quantized once,
at the block output, so onnxruntime runs every add as QLinearAdd and every concat as QLinearConcat."""

from __future__ import annotations

import torch
from torch import nn

from prunequant.models import build
from prunequant.models.checkpoint import load_checkpoint, save_checkpoint
from prunequant.quantization.block_output import BLOCK_QUANTIZER, OutputQuantizer

from ..quantization.int8_roundtrip import roundtrip


def test_mobilenetv2_runs_every_residual_add_as_an_integer_kernel(tmp_path):
    torch.manual_seed(0)
    model = build("mobilenetv2", num_classes=10, in_channels=3, input_size=16, width_mult=0.25)
    trip = roundtrip(model, (3, 16, 16), tmp_path / "mbv2.onnx")
    residual = [name for name, m in trip.qmodel.named_modules() if getattr(m, "use_residual", False)]
    assert len(residual) == 12  # at width 0.25 (10 at width 1, see benchmarks/coverage.py)
    for name in residual:
        assert isinstance(getattr(trip.qmodel.get_submodule(name), BLOCK_QUANTIZER), OutputQuantizer)
    assert (trip.ops.get("QLinearAdd", 0), trip.ops.get("Add", 0)) == (12, 0)
    assert trip.result.layers == "int8: all 53 layers"
    assert trip.mean_diff < 0.01  # 53 requantized layers deep: one-code flips at ties set the max


def test_zero_padded_shortcut_adds_run_as_integer_kernels(tmp_path):
    """ResNet option A: the shortcut slices and zero-pads a quantized tensor (DQ -> Slice -> Slice -> Pad ->
    Add). Its values stay on that DQ's grid, so the Add gets an exact Q -> DQ there and becomes QLinearAdd;
    the two stage-entry adds ran in float before."""
    torch.manual_seed(0)
    model = build("resnet20", num_classes=10, in_channels=3, input_size=16, shortcut="A")
    trip = roundtrip(model, (3, 16, 16), tmp_path / "resnet20a.onnx")
    assert (trip.ops.get("QLinearAdd", 0), trip.ops.get("Add", 0)) == (9, 0)
    assert trip.result.float_ops == {} and trip.result.layers == "int8: all 20 layers"
    assert trip.mean_diff < 0.01


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2, self.relu = (
            nn.Conv2d(8, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + x)


class MaxPoolStem(nn.Module):
    """ResNet-18's entry: conv-BN-ReLU -> MaxPool, read by the block's first conv and by its identity add."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.block, self.fc = Block(), nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.block(self.stem(x)), 1), 1))


def test_an_add_reading_a_maxpool_that_a_conv_also_reads_keeps_that_conv_integer(tmp_path):
    """onnxruntime moves the DQ through the MaxPool for both readers; a Q -> DQ for the add alone there
    left the block's first conv float (torchvision resnet18 was "mixed: 20 of 21 layers int8")."""
    torch.manual_seed(0)
    trip = roundtrip(MaxPoolStem(), (3, 16, 16), tmp_path / "stem.onnx")
    assert trip.result.layers == "int8: all 4 layers" and trip.result.float_ops == {}
    assert (trip.ops.get("QLinearAdd", 0), trip.ops.get("Conv", 0)) == (1, 0), trip.ops


def test_block_output_quantizers_reload_from_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build("mobilenetv2", num_classes=10, in_channels=3, input_size=16, width_mult=0.25)
    qmodel = roundtrip(model, (3, 16, 16), tmp_path / "mbv2.onnx").qmodel
    save_checkpoint(qmodel, tmp_path / "q.pt")
    loaded, _ = load_checkpoint(tmp_path / "q.pt")
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), qmodel(x))


class Inception(nn.Module):
    """Two conv-BN-ReLU branches concatenated in forward; the block output feeds a conv and a skip."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], 1)


class ConcatNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.block = Inception()
        self.conv = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(self.stem(x))
        y = self.conv(y) + y
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


def test_a_concatenating_block_runs_as_qlinear_concat(tmp_path):
    torch.manual_seed(0)
    trip = roundtrip(ConcatNet(), (3, 8, 8), tmp_path / "cat.onnx")
    assert isinstance(getattr(trip.qmodel.block, BLOCK_QUANTIZER), OutputQuantizer)
    assert trip.ops.get("QLinearConcat", 0) == 1 and trip.ops.get("Concat", 0) == 0
    assert trip.result.layers == "int8: all 5 layers; 2 ops float", trip.result.float_layers
    assert set(trip.result.float_ops) == {"Add", "GlobalAveragePool"}  # forward's own add has no quantizer
    assert trip.max_diff < 0.02


class DictBlock(nn.ModuleDict):
    """A DenseNet-style block: a ModuleDict whose forward iterates its children and concatenates."""

    def __init__(self) -> None:
        super().__init__({"a": nn.Conv2d(4, 4, 1), "b": nn.Conv2d(4, 4, 1)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([layer(x) for layer in self.values()], 1)


def test_containers_that_iterate_their_children_get_no_output_quantizer(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 1), nn.ReLU(), DictBlock(), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 2, 1)
    )
    trip = roundtrip(model, (3, 6, 6), tmp_path / "dict.onnx")
    assert not hasattr(trip.qmodel[2], BLOCK_QUANTIZER)
    assert trip.max_diff < 0.02
