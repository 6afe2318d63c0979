"""Weight / activation megabits and performance density (seed 003 Table 4)."""

import pytest
import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.models import build
from prunequant.quantization import QuantConfig, memory_report, quantize


def tiny_relu_net() -> nn.Module:
    model = nn.Sequential(nn.Linear(4, 3, bias=False), nn.ReLU())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, 0, 0]]))
    return model


X = torch.tensor([[1.0, 2.0, 0.0, 4.0], [1.0, 2.0, 0.0, 4.0]])  # two identical inputs


def test_exact_counts_on_a_float_model():
    report = memory_report(tiny_relu_net(), X, w_bits=4, a_bits=8, accuracy=0.5)
    # 2 non-zero weights x 4 bits; input (3 non-zeros) + ReLU output [1, 0, 0] (1 non-zero) x 8 bits
    assert report.weight_mb == pytest.approx(8e-6)
    assert report.activation_mb == pytest.approx(32e-6)
    assert (report.params, report.weight_density) == (12, pytest.approx(2 / 12))
    assert report.activation_elements == 7 and report.activation_sparsity == pytest.approx(3 / 7)
    assert report.pd == pytest.approx(50 / 40e-6)
    assert report.to_dict()["total_mb"] == pytest.approx(40e-6)
    float32 = memory_report(tiny_relu_net(), X)
    assert (float32.weight_mb, float32.activation_mb, float32.pd) == (
        pytest.approx(64e-6),
        pytest.approx(128e-6),
        None,
    )


def test_quantized_model_takes_bits_from_its_quantizers():
    qmodel = quantize(tiny_relu_net(), QuantConfig(w_bits=4, a_bits=8), [X])
    report = memory_report(qmodel, X)
    assert report.weight_mb == pytest.approx(8e-6) and report.activation_mb == pytest.approx(32e-6)
    mixed = quantize(tiny_relu_net(), QuantConfig(w_bits=6, a_bits=8, overrides={"1": {"a_bits": 3}}), [X])
    assert memory_report(mixed, X).activation_mb == pytest.approx((3 * 8 + 1 * 3) * 1e-6)


def test_resnet32_at_8_bits_and_25_percent_sparsity_matches_seed_003(zero_weights):
    model = zero_weights(build("resnet32", num_classes=10, in_channels=3, input_size=32), 0.25)
    report = memory_report(model, torch.randn(2, 3, 32, 32), w_bits=8, a_bits=8)
    # seed 003 Table 4: 2.80 Mb of weights (all parameters counted, as torchinfo's total_params)
    assert report.weight_mb == pytest.approx(2.80, abs=0.01)
    assert report.params == 466_906
    relus = 3 * 32 * 32 + 16 * 32 * 32 * 11 + 32 * 16 * 16 * 10 + 64 * 8 * 8 * 10  # input + 31 ReLUs
    branch_ends = 16 * 32 * 32 * 5 + 32 * 16 * 16 * 6 + 64 * 8 * 8 * 6  # 15 bn2 + 2 projection shortcuts
    assert report.activation_elements == relus + branch_ends + 64  # + the pooled features the fc reads


def test_quantized_resnet_counts_the_same_sites_as_its_float_report():
    model = build("resnet20", num_classes=10, in_channels=3, input_size=8).eval()
    batch = torch.randn(2, 3, 8, 8)
    float_sites = memory_report(model, batch, a_bits=8).activation_elements
    qmodel = quantize(model, QuantConfig(), [batch])
    assert memory_report(qmodel, batch).activation_elements == float_sites
    branch_ends = 16 * 8 * 8 * 3 + 32 * 4 * 4 * 4 + 64 * 2 * 2 * 4  # 9 bn2 + 2 projection shortcuts
    without = quantize(model, QuantConfig(quantize_residuals=False), [batch])
    assert memory_report(without, batch).activation_elements == float_sites - branch_ends - 64  # - fc input
    no_input = quantize(model, QuantConfig(quantize_input=False), [batch])  # the input then counts as float
    unquantized_input = memory_report(no_input, batch)
    assert unquantized_input.activation_elements == float_sites
    assert unquantized_input.activation_mb > memory_report(qmodel, batch).activation_mb + 3 * 8 * 8 * 20e-6


def test_accuracy_is_a_fraction():
    with pytest.raises(ConfigError, match="accuracy"):
        memory_report(tiny_relu_net(), X, accuracy=92.5)
    with pytest.raises(ConfigError, match="w_bits"):
        memory_report(tiny_relu_net(), X, w_bits=1)


class _SumOfTwo(nn.Module):
    """Two inputs through one shared linear layer: the activations of both count."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_relu_net()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.net(a) + self.net(b)


def test_several_inputs_are_fed_and_counted_per_sample():
    model = _SumOfTwo()
    one = memory_report(model.net, X, w_bits=4, a_bits=8)
    two = memory_report(model, (X, X), w_bits=4, a_bits=8)
    assert two.weight_mb == one.weight_mb and two.activation_mb > one.activation_mb
    keyword = memory_report(model, {"a": X, "b": X}, w_bits=4, a_bits=8)
    assert keyword.activation_mb == two.activation_mb
