"""Zero share (seed 000 Table II): about x4 more zeros for every 2 bits fewer; pruned zeros counted apart."""

import math

import pytest
import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.quantization import QuantConfig, quantize, zero_share


@pytest.fixture(scope="module")
def gaussian_layer() -> nn.Module:
    torch.manual_seed(0)
    layer = nn.Linear(1024, 1024, bias=False)
    with torch.no_grad():
        layer.weight.normal_()
    return layer


def test_zero_share_grows_about_four_times_per_two_bits_fewer(gaussian_layer):
    amax = gaussian_layer.weight.abs().max().item()
    shares = {}
    for bits in (16, 14, 12, 10, 8, 6):
        result = zero_share(gaussian_layer, bits, per_channel=False)
        step = amax / (2 ** (bits - 1) - 1)
        expected = math.erf(step / 2 / math.sqrt(2))  # P(|w| < step / 2) for w ~ N(0, 1)
        assert result.share == pytest.approx(expected, rel=0.25)
        shares[bits] = result.share
    ratios = [shares[bits - 2] / shares[bits] for bits in (16, 14, 12, 10, 8)]
    assert all(3.0 < ratio < 5.0 for ratio in ratios), ratios


def test_pruned_zeros_are_counted_apart(gaussian_layer):
    layer = gaussian_layer
    with torch.no_grad():
        pruned = nn.Linear(1024, 1024, bias=False)
        pruned.weight.copy_(layer.weight * (torch.rand_like(layer.weight) > 0.1))
    result = zero_share(quantize(pruned, QuantConfig(w_bits=8, a_bits=None, per_channel=False)))
    assert result.total == 1024 * 1024
    assert result.prior_zeros == int((pruned.weight == 0).sum())
    dense = zero_share(layer, 8, per_channel=False)
    assert result.new_zeros == pytest.approx(0.9 * dense.new_zeros, rel=0.1)
    assert result.share_of_nonzero == result.new_zeros / (result.total - result.prior_zeros)
    assert result.to_dict()["share"] == result.share


def test_float_model_needs_bits(gaussian_layer):
    with pytest.raises(ConfigError, match="w_bits"):
        zero_share(gaussian_layer)
