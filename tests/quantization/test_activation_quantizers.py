"""An activation quantizer after every common activation, with fixed ranges where the output range is
known (Sigmoid, Hardsigmoid [0, 1]; Tanh [-1, 1]) and calibrated asymmetric ranges for negative tails."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.models.checkpoint import load_checkpoint, save_checkpoint
from prunequant.quantization import QuantAct
from prunequant.quantization.gated_silu import GATED

from .int8_roundtrip import roundtrip

SHAPE = (3, 8, 8)


class ConvAct(nn.Module):
    """conv-BN-act -> conv-BN-act -> pool -> linear: every activation sits between two integer convs."""

    def __init__(self, activation: type[nn.Module]) -> None:
        super().__init__()
        self.conv1, self.bn1, self.act1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), activation()
        self.conv2, self.bn2, self.act2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), activation()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


ACTIVATIONS = [nn.LeakyReLU, nn.SiLU, nn.Hardswish, nn.Sigmoid, nn.Hardsigmoid, nn.Tanh, nn.GELU, nn.ReLU6]
FLOAT_IN_ONNXRUNTIME = (nn.Tanh, nn.GELU)
"""Activations onnxruntime has no integer kernel for: float between DQ and Q, named in float_ops (a
Hardswish and a Hardsigmoid run as QLinearAdd (+ QLinearMul): tests/export/test_hardswish_int8.py)."""


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda cls: cls.__name__)
def test_each_activation_gets_a_quantizer_and_the_int8_graph_matches_fake_quant(activation, tmp_path):
    torch.manual_seed(0)
    trip = roundtrip(ConvAct(activation), SHAPE, tmp_path / "act.onnx")
    for name in ("act1", "act2"):
        act = trip.qmodel.get_submodule(name)
        inner = GATED.get(activation, activation)  # tests/export/test_silu_int8.py
        assert isinstance(act, QuantAct) and isinstance(act.activation, inner)
    assert trip.result.float_layers == {} and trip.result.float_norms == {}
    floating = {"act1", "act2"} if activation in FLOAT_IN_ONNXRUNTIME else set()
    assert set(trip.result.float_ops) == floating  # the pool is integer: QLinearGlobalAveragePool
    assert trip.result.layers == "int8: all 3 layers" + (f"; {len(floating)} ops float" if floating else "")
    assert trip.max_diff < 0.02


@pytest.mark.parametrize(
    ("activation", "bounds"),
    [(nn.Sigmoid, (0.0, 1.0)), (nn.Hardsigmoid, (0.0, 1.0)), (nn.Tanh, (-1.0, 1.0))],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_sigmoid_and_tanh_use_their_fixed_output_range(activation, bounds, tmp_path):
    torch.manual_seed(0)
    quantizer = roundtrip(ConvAct(activation), SHAPE, tmp_path / "fixed.onnx").qmodel.act1.act_quantizer
    low, high = bounds
    assert quantizer.spec.fixed_range == bounds
    scale, zero_point = float(quantizer.scale), int(quantizer.zero_point)
    assert scale == pytest.approx((high - low) / 255)
    assert (0 - zero_point) * scale == pytest.approx(low, abs=scale)  # the grid spans [low, high]
    assert (255 - zero_point) * scale == pytest.approx(high, abs=scale)


@pytest.mark.parametrize("activation", [nn.SiLU, nn.Hardswish], ids=lambda cls: cls.__name__)
def test_negative_tails_are_kept_by_a_calibrated_zero_point(activation, tmp_path):
    torch.manual_seed(0)
    quantizer = roundtrip(ConvAct(activation), SHAPE, tmp_path / "tail.onnx").qmodel.act1.act_quantizer
    lower = float(quantizer.observer.lower)
    assert quantizer.spec.fixed_range is None and -0.38 <= lower < -0.1  # SiLU min -0.28, Hardswish -0.375
    assert int(quantizer.zero_point) > 0  # the negative codes exist


def test_quantized_activations_reload_from_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = ConvAct(lambda: nn.LeakyReLU(0.2))
    qmodel = roundtrip(model, SHAPE, tmp_path / "leaky.onnx").qmodel
    save_checkpoint(qmodel, tmp_path / "q.pt")
    loaded, _ = load_checkpoint(tmp_path / "q.pt", model=ConvAct(lambda: nn.LeakyReLU(0.2)))
    assert loaded.act1.activation.negative_slope == 0.2
    x = torch.randn(4, *SHAPE)
    with torch.no_grad():
        assert torch.equal(loaded(x), qmodel(x))
