"""Eval-mode biases on the int32 grid of the int8 export: graph links, BN-folded rounding, float training."""

from __future__ import annotations

import torch
from torch import nn

from prunequant.quantization.graph import link_integer_bias
from prunequant.quantization.integer_bias import bias_codes, integer_bias


def _settled(qmodel: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so folding changes the bias."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for norm in (qmodel.bn1, qmodel.bn2):
            for tensor in (norm.running_mean, norm.weight, norm.bias):
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
            norm.running_var.copy_(torch.rand(norm.running_var.shape, generator=generator) + 0.5)
    return qmodel.eval()


def test_links_reach_the_preceding_activation_quantizer_and_the_following_bn(qmodel):
    assert qmodel.conv1.bias_link == (None, qmodel.bn1)  # conv1 has its own input quantizer
    assert qmodel.conv2.bias_link == (qmodel.relu1.act_quantizer, qmodel.bn2)
    assert qmodel.fc.bias_link == (None, None) and qmodel.fc.input_quantizer is not None  # reads the pool
    assert link_integer_bias(qmodel) == 2


def test_the_folded_eval_bias_is_an_int32_code_times_input_scale_times_folded_weight_scale(qmodel):
    model = _settled(qmodel)
    conv, norm, source = model.conv2, model.bn2, model.relu1.act_quantizer
    factor = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
    scale = (source.scale * conv.weight_quantizer.scale * factor.abs()).double()
    with torch.no_grad():
        folded = (conv.effective_bias() - norm.running_mean) * factor + norm.bias
        float_folded = (conv.bias - norm.running_mean) * factor + norm.bias
    codes = folded.double() / scale
    assert torch.allclose(codes, codes.round(), atol=1e-3)
    assert torch.equal(codes.round().int(), bias_codes(float_folded, scale))
    assert not torch.allclose(folded, float_folded, atol=1e-6)  # the rounding is not a no-op


def test_training_and_unlinked_layers_keep_the_float_bias(qmodel):
    model = _settled(qmodel)
    x = torch.rand(4, 8, 8, 8)
    with torch.no_grad():
        linked = model.conv2(x)
        model.conv2.train()
        assert model.conv2.effective_bias() is model.conv2.bias
        model.conv2.eval()
        model.conv2.bias_link = (None, None)
        assert model.conv2.effective_bias() is model.conv2.bias
        assert not torch.allclose(model.conv2(x), linked, atol=1e-6)


def test_a_channel_with_zero_bn_scale_keeps_its_float_bias():
    norm = nn.BatchNorm2d(2).eval()
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([0.0, 2.0]))
        norm.running_var.fill_(1.0 - norm.eps)
    bias = torch.tensor([0.3, 0.3])
    rounded = integer_bias(bias, torch.tensor([0.1, 0.1]), torch.tensor(0.5), norm)
    assert rounded[0].item() == bias[0].item()
    assert torch.allclose(norm(rounded.view(1, 2, 1, 1)).flatten()[1], torch.tensor(0.6), atol=1e-6)


def test_wider_than_8_bits_keeps_the_float_bias(tiny_model, blob_loaders):
    """16-bit scales make input_scale * weight_scale so small that int32 bias codes would overflow."""
    from prunequant.quantization import QuantConfig, quantize

    for bits in (16, 9):
        wide = _settled(
            quantize(tiny_model, QuantConfig(w_bits=bits, a_bits=bits), blob_loaders[0], calib_batches=2)
        )
        assert wide.conv2.integer_bias() is None and wide.conv2.effective_bias() is wide.conv2.bias
    narrow = _settled(quantize(tiny_model, QuantConfig(w_bits=8, a_bits=8), blob_loaders[0], calib_batches=2))
    assert narrow.conv2.integer_bias() is not None
