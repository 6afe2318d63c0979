"""Uniform fake quantization: rounding error, clipping, levels, zero, per-channel, STE and exact codes."""

import pytest
import torch

from prunequant.quantization.fake_quant import (
    compute_qparams,
    dequantize,
    fake_quantize,
    quant_range,
    quantize_codes,
)


def test_quant_ranges_are_restricted_signed_and_full_unsigned():
    assert quant_range(8, signed=True) == (-127, 127)
    assert quant_range(8, signed=False) == (0, 255)
    assert quant_range(2, signed=True) == (-1, 1)
    assert quant_range(16, signed=False) == (0, 65535)


@pytest.mark.parametrize("bits", [2, 4, 8, 12, 16])
def test_round_trip_error_is_at_most_half_a_step_inside_the_range_and_clipped_outside(bits):
    qmin, qmax = quant_range(bits, signed=False)
    scale, zero_point = compute_qparams(torch.tensor(-1.0), torch.tensor(3.0), qmin, qmax, symmetric=False)
    inside = torch.linspace(-1.0, 3.0, 10_001)
    error = (fake_quantize(inside, scale, zero_point, qmin, qmax, None) - inside).abs()
    assert error.max() <= scale / 2 + 1e-6
    outside = torch.tensor([-5.0, 7.0])
    clipped = fake_quantize(outside, scale, zero_point, qmin, qmax, None)
    assert clipped.tolist() == pytest.approx([-1.0, 3.0], abs=float(scale))
    assert clipped[0] == fake_quantize(torch.tensor(-1.0), scale, zero_point, qmin, qmax, None)


@pytest.mark.parametrize("bits", [2, 3, 4, 6])
def test_distinct_values_per_channel_fit_in_2_to_the_bits(bits):
    weight = torch.randn(4, 2000) * torch.tensor([[0.1], [1.0], [5.0], [50.0]])
    qmin, qmax = quant_range(bits, signed=True)
    amax = weight.abs().amax(1)
    scale, zero_point = compute_qparams(-amax, amax, qmin, qmax, symmetric=True)
    fake = fake_quantize(weight, scale, zero_point, qmin, qmax, 0)
    for row, step in zip(fake, scale, strict=True):
        # the restricted signed range has 2^b - 1 levels
        assert 2 ** (bits - 1) < row.unique().numel() <= 2**bits - 1
        assert torch.allclose(row / step, (row / step).round(), atol=1e-4)  # on the grid of the step
    unsigned = quant_range(bits, signed=False)
    low, high = weight.amin(1), weight.amax(1)
    scale, zero_point = compute_qparams(low, high, *unsigned, symmetric=False)
    for row in fake_quantize(weight, scale, zero_point, *unsigned, 0):
        assert row.unique().numel() <= 2**bits


def test_symmetric_keeps_zero_exact_and_asymmetric_keeps_zero_representable():
    qmin, qmax = quant_range(4, signed=True)
    scale, zero_point = compute_qparams(torch.tensor(-0.3), torch.tensor(0.7), qmin, qmax, symmetric=True)
    assert int(zero_point) == 0
    assert fake_quantize(torch.tensor([0.0]), scale, zero_point, qmin, qmax, None).item() == 0.0
    qmin, qmax = quant_range(4, signed=False)
    scale, zero_point = compute_qparams(torch.tensor(-0.37), torch.tensor(1.91), qmin, qmax, symmetric=False)
    assert qmin <= int(zero_point) <= qmax
    assert fake_quantize(torch.tensor([0.0]), scale, zero_point, qmin, qmax, None).item() == 0.0
    # a range that excludes 0 is widened to hold it
    scale, zero_point = compute_qparams(torch.tensor(2.0), torch.tensor(6.0), qmin, qmax, symmetric=False)
    assert int(zero_point) == 0 and float(scale) == pytest.approx(6.0 / 15)


def test_per_channel_beats_per_tensor_on_mixed_channel_ranges():
    torch.manual_seed(0)
    weight = torch.randn(8, 64) * torch.logspace(-2, 1, 8).unsqueeze(1)
    qmin, qmax = quant_range(6, signed=True)
    amax = weight.abs().amax(1)
    scale, zero_point = compute_qparams(-amax, amax, qmin, qmax, symmetric=True)
    per_channel = (fake_quantize(weight, scale, zero_point, qmin, qmax, 0) - weight).abs().mean(1) / amax
    total = weight.abs().max()
    scale, zero_point = compute_qparams(-total, total, qmin, qmax, symmetric=True)
    per_tensor = (fake_quantize(weight, scale, zero_point, qmin, qmax, None) - weight).abs().mean(1) / amax
    assert per_channel.mean() < per_tensor.mean() / 10  # relative error, averaged over channels
    assert per_channel[-1] == pytest.approx(per_tensor[-1].item())  # the widest channel sets the tensor scale


def test_straight_through_gradient_is_one_inside_and_zero_outside():
    qmin, qmax = quant_range(8, signed=False)
    scale, zero_point = compute_qparams(torch.tensor(0.0), torch.tensor(2.55), qmin, qmax, symmetric=False)
    x = torch.tensor([-1.0, 0.0, 0.5, 1.234, 2.55, 3.0], requires_grad=True)
    fake_quantize(x, scale, zero_point, qmin, qmax, None).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    w = torch.tensor([[-2.0, 0.3, 2.0], [0.1, 0.0, -0.5]], requires_grad=True)
    wscale = torch.tensor([1.0 / 127, 0.5 / 127])
    fake_quantize(w, wscale, torch.zeros(2, dtype=torch.int32), -127, 127, 0).sum().backward()
    assert w.grad.tolist() == [[0.0, 1.0, 0.0], [1.0, 1.0, 1.0]]


@pytest.mark.parametrize("bits", [2, 5, 8, 11, 16])
@pytest.mark.parametrize("symmetric", [True, False])
def test_codes_dequantize_bit_exactly_to_the_fused_op(bits, symmetric):
    torch.manual_seed(bits)
    weight = torch.randn(16, 3, 3, 3) * torch.rand(16, 1, 1, 1)
    qmin, qmax = quant_range(bits, signed=symmetric)
    rows = weight.flatten(1)
    low, high = (-rows.abs().amax(1), rows.abs().amax(1)) if symmetric else (rows.amin(1), rows.amax(1))
    for axis, (lo, hi) in ((0, (low, high)), (None, (low.min(), high.max()))):
        scale, zero_point = compute_qparams(lo, hi, qmin, qmax, symmetric=symmetric)
        codes = quantize_codes(weight, scale, zero_point, qmin, qmax, axis)
        assert codes.dtype == torch.int64 and codes.min() >= qmin and codes.max() <= qmax
        assert torch.equal(
            dequantize(codes, scale, zero_point, axis),
            fake_quantize(weight, scale, zero_point, qmin, qmax, axis),
        )


def test_pow2_scales_are_powers_of_two_that_cover_the_range():
    qmin, qmax = quant_range(8, signed=True)
    amax = torch.tensor([0.3, 1.0, 5.5])
    scale, _ = compute_qparams(-amax, amax, qmin, qmax, symmetric=True, pow2=True)
    assert torch.equal(scale, torch.exp2(torch.log2(scale).round()))
    assert torch.all(scale * qmax >= amax) and torch.all(scale * qmax / 2 < amax)


def test_all_zero_channel_gets_a_positive_scale():
    scale, zero_point = compute_qparams(torch.zeros(2), torch.zeros(2), -127, 127, symmetric=True)
    assert torch.all(scale > 0) and torch.all(zero_point == 0)
