"""SiLU runs as integer ops on onnxruntime: quantize() gates it as x * q(sigmoid(x)) (GatedSiLU), which the
int8 export writes as DQ -> Sigmoid -> Q -> DQ -> Mul -> Q and onnxruntime fuses into QLinearSigmoid and
QLinearMul; checkpoints with and without the gate reload."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.models.checkpoint import load_checkpoint, save_checkpoint
from prunequant.quantization import QuantConfig
from prunequant.quantization.gated_silu import GatedSiLU

from ..quantization.int8_roundtrip import roundtrip
from ..quantization.test_activation_quantizers import SHAPE, ConvAct


def test_silu_becomes_qlinear_sigmoid_and_qlinear_mul_matching_fake_quant(tmp_path):
    torch.manual_seed(0)
    trip = roundtrip(ConvAct(nn.SiLU), SHAPE, tmp_path / "silu.onnx")
    assert trip.ops.get("QLinearSigmoid", 0) == 2 and trip.ops.get("QLinearMul", 0) == 2, trip.ops
    assert trip.ops.get("Sigmoid", 0) == 0 and trip.ops.get("Mul", 0) == 0
    assert trip.result.layers == "int8: all 3 layers"
    assert trip.max_diff < 1e-3  # onnxruntime computes the same codes as the fake-quant model


def test_the_gate_is_quantized_on_the_fixed_unit_range_with_at_least_8_bits(tmp_path):
    torch.manual_seed(0)
    for a_bits, gate_bits in ((8, 8), (4, 8), (12, 12)):
        config = QuantConfig(a_bits=a_bits)
        qmodel = roundtrip(ConvAct(nn.SiLU), SHAPE, tmp_path / f"a{a_bits}.onnx", config).qmodel
        gate = qmodel.act1.activation
        assert isinstance(gate, GatedSiLU) and gate.gate_quantizer.bits == gate_bits
        assert float(gate.gate_quantizer.scale) * (2**gate_bits - 1) == pytest.approx(1.0)
        x = torch.linspace(-6, 6, 101)
        expected = x * torch.round(torch.sigmoid(x) * (2**gate_bits - 1)) / (2**gate_bits - 1)
        assert torch.allclose(gate(x), expected, atol=1e-6)


def test_a_silu_subclass_keeps_its_own_forward(tmp_path):
    class Shifted(nn.SiLU):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) + 0.1

    torch.manual_seed(0)
    qmodel = roundtrip(ConvAct(Shifted), SHAPE, tmp_path / "sub.onnx").qmodel
    assert type(qmodel.act1.activation) is Shifted


def test_gated_and_pre_gate_checkpoints_reload_with_their_own_numerics(tmp_path):
    torch.manual_seed(0)
    qmodel = roundtrip(ConvAct(nn.SiLU), SHAPE, tmp_path / "q.onnx").qmodel
    x = torch.randn(4, *SHAPE)
    save_checkpoint(qmodel, tmp_path / "gated.pt")
    loaded, _ = load_checkpoint(tmp_path / "gated.pt", model=ConvAct(nn.SiLU))
    assert isinstance(loaded.act1.activation, GatedSiLU)
    with torch.no_grad():
        assert torch.equal(loaded(x), qmodel(x))
    # what quantize() wrote before the gate existed: QuantAct(nn.SiLU), no gate quantizer in the state
    for name in ("act1", "act2"):
        qmodel.get_submodule(name).activation = nn.SiLU()
    save_checkpoint(qmodel, tmp_path / "plain.pt")
    old, _ = load_checkpoint(tmp_path / "plain.pt", model=ConvAct(nn.SiLU))
    assert type(old.act1.activation) is nn.SiLU
    with torch.no_grad():
        assert torch.equal(old(x), qmodel(x))
