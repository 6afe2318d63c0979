"""The "quantized" tensor codec and save_quantized: bit-exact effective weights, size with bits and zeros."""

import pytest
import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.export.storage import compressed_size_report, load_compressed
from prunequant.export.storage.quantized_codec import (
    BitmaskCodec,
    QuantizedCodec,
    quantized_codecs,
    save_quantized,
)
from prunequant.quantization import QuantConfig, quantize, quantized_layers


def blobs(n=3):
    gen = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 1, 8, 8, generator=gen), torch.zeros(16, dtype=torch.long)) for _ in range(n)]


def prune_half(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight[module.weight.abs() <= module.weight.abs().median()] = 0
    return model


@pytest.mark.parametrize(
    "config",
    [
        QuantConfig(w_bits=8, a_bits=8),
        QuantConfig(w_bits=3, a_bits=4, per_channel=False),
        QuantConfig(w_bits=5, symmetric_weights=False, pow2_scale=True),
        QuantConfig(w_bits=16, overrides={"fc": {"w_bits": 2}}, fold_bn=True),
    ],
)
@pytest.mark.parametrize("pruned", [False, True])
def test_packed_file_loads_the_fake_quant_weights_bit_exactly(
    tiny_model, tiny_model_class, tmp_path, config, pruned
):
    model = prune_half(tiny_model) if pruned else tiny_model
    qmodel = quantize(model, config, blobs()).eval()
    path = tmp_path / "q.pqz"
    size = save_quantized(qmodel, path, note="test")
    assert size == path.stat().st_size
    loaded, meta = load_compressed(path, model=tiny_model_class())
    assert meta["note"] == "test"
    for name, layer in quantized_layers(qmodel):
        twin = loaded.get_submodule(name)
        assert torch.equal(twin.weight, layer.quantized_weight()), name
        assert torch.equal(twin.quantized_weight(), layer.quantized_weight()), name
        if pruned:
            assert torch.equal(twin.weight_mask, layer.weight_mask)
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(loaded(x), qmodel(x))


def wide(bits: int, pruned: bool = False) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 256))
    return quantize(prune_half(model) if pruned else model, QuantConfig(w_bits=bits, a_bits=None))


def test_encoded_bytes_are_exactly_the_packed_codes_plus_qparams():
    report = compressed_size_report(wide(4), quantized_codecs(wide(4)))
    # 65536 codes x 4 bits + 256 float32 scales + 256 int32 zero points + the int64 shape (2 dims)
    assert report["tensors"]["0.weight"] == {
        "codec": "quantized",
        "dense_bytes": 262144,
        "encoded_bytes": 34832,
    }
    pruned = wide(8, pruned=True)
    kept = int(pruned[0].quantized_weight().count_nonzero())
    assert 30_000 < kept <= 32_768
    encoded = compressed_size_report(pruned, quantized_codecs(pruned))["tensors"]
    assert encoded["0.weight"]["encoded_bytes"] == 8192 + kept + 2048 + 16  # bitmask + kept 8-bit codes
    assert encoded["0.weight_mask"] == {"codec": "bitmask", "dense_bytes": 65536, "encoded_bytes": 8192 + 16}


def test_file_size_shrinks_with_bits_and_with_pruning(tmp_path):
    sizes = {bits: save_quantized(wide(bits), tmp_path / f"{bits}.pqz") for bits in (16, 8, 4, 2)}
    assert sizes[16] > sizes[8] > sizes[4] > sizes[2]
    assert sizes[4] < 0.6 * sizes[8] and sizes[2] < 0.7 * sizes[4]
    assert save_quantized(wide(8, pruned=True), tmp_path / "p.pqz") < 0.8 * sizes[8]


def test_codec_needs_qparams_and_bitmask_needs_bools():
    with pytest.raises(ConfigError, match="for_layer"):
        QuantizedCodec(8, -127, 127, 0).encode(torch.ones(2, 2))
    with pytest.raises(ConfigError, match="bool"):
        BitmaskCodec().encode(torch.ones(3))
    mask = torch.rand(5, 7) > 0.5
    codec = BitmaskCodec()
    assert torch.equal(codec.decode(codec.encode(mask)), mask)


def test_save_quantized_needs_quantized_weights(tiny_model, tmp_path):
    with pytest.raises(ConfigError, match="quantize it first"):
        save_quantized(tiny_model, tmp_path / "f.pqz")
    with pytest.raises(ConfigError, match="quantize it first"):
        save_quantized(quantize(tiny_model, QuantConfig(w_bits=None)), tmp_path / "f.pqz")
