"""Quantized models save with save_checkpoint and reload (weights_only) with identical outputs."""

import torch

from prunequant.models import build, load_checkpoint, save_checkpoint
from prunequant.models.codecs import codec_for
from prunequant.quantization import QuantAct, QuantConfig, QuantConv2d, QuantizerSpec, quantize


def test_tiny_quantized_model_round_trips_into_a_float_skeleton(qmodel, tiny_model_class, tmp_path):
    path = save_checkpoint(qmodel, tmp_path / "q.pt")
    loaded, _ = load_checkpoint(path, model=tiny_model_class())
    assert isinstance(loaded.conv1, QuantConv2d) and isinstance(loaded.relu2, QuantAct)
    x = torch.randn(6, 1, 8, 8)
    assert torch.equal(loaded(x), qmodel.eval()(x))
    assert torch.equal(loaded.relu1.act_quantizer.scale, qmodel.relu1.act_quantizer.scale)


def test_zoo_model_with_folding_masks_and_mixed_precision_reloads_by_name(tmp_path, zero_weights):
    torch.manual_seed(0)
    model = zero_weights(build("small_cnn", num_classes=10, in_channels=1, input_size=28, width=4), 0.3)
    config = QuantConfig(
        fold_bn=True,
        calibration="ema",
        pow2_scale=True,
        overrides={"features.block2.*": {"w_bits": 4, "a_bits": 6}},
        exclude=["classifier.3"],
    )
    batches = [(torch.randn(8, 1, 28, 28), torch.zeros(8, dtype=torch.long)) for _ in range(3)]
    qmodel = quantize(model, config, batches)
    path = save_checkpoint(qmodel, tmp_path / "q.pt", dataset="synthetic")
    loaded, meta = load_checkpoint(path)
    assert meta["arch"] == "small_cnn" and meta["dataset"] == "synthetic"
    conv = loaded.features.block2[0][0]
    assert conv.weight_quantizer.bits == 4 and conv.weight_mask is not None and conv.bias is not None
    assert torch.equal(conv.weight_mask, qmodel.features.block2[0][0].weight_mask)
    assert type(loaded.classifier[3]) is torch.nn.Linear
    x = torch.randn(5, 1, 28, 28)
    assert torch.equal(loaded(x), qmodel.eval()(x))


def test_branch_quantizers_round_trip_with_bn_identity_and_output_quantizers(branches, tmp_path):
    batches = [torch.randn(4, 1, 6, 6) for _ in range(2)]
    for fold_bn in (False, True):
        qmodel = quantize(branches().eval(), QuantConfig(fold_bn=fold_bn, calibration="ema"), batches)
        path = save_checkpoint(qmodel, tmp_path / f"b{fold_bn}.pt")
        loaded, _ = load_checkpoint(path, model=branches())
        assert isinstance(loaded.bn3, QuantAct)
        assert type(loaded.bn3.activation) is (torch.nn.Identity if fold_bn else torch.nn.BatchNorm2d)
        assert torch.equal(loaded.conv2.output_quantizer.scale, qmodel.conv2.output_quantizer.scale)
        assert loaded.state_dict().keys() == qmodel.state_dict().keys()
        assert torch.equal(loaded(batches[0]), qmodel.eval()(batches[0]))


def test_zoo_resnet_with_quantized_residuals_reloads_without_a_skeleton(tmp_path):
    model = build("resnet20", num_classes=4, in_channels=1, input_size=8).eval()
    batch = torch.randn(4, 1, 8, 8)
    qmodel = quantize(model, QuantConfig(), [batch])
    loaded, _ = load_checkpoint(save_checkpoint(qmodel, tmp_path / "r.pt"))
    assert isinstance(loaded.layer2[0].shortcut[1], QuantAct) and loaded.fc.input_quantizer is not None
    assert torch.equal(loaded(batch), qmodel(batch))


def test_manifest_entries_written_before_branch_quantizers_still_load():
    spec = QuantizerSpec(bits=8, symmetric=False).to_dict()
    act = codec_for("QuantAct").from_config({"activation": "ReLU6", "spec": spec})
    assert type(act.activation) is torch.nn.ReLU6 and act.act_quantizer.bits == 8
    base = {"in_features": 4, "out_features": 2, "bias": True, "weight_spec": None, "input_spec": spec}
    layer = codec_for("QuantLinear").from_config({**base, "weight_mask": False})
    assert layer.input_quantizer is not None and layer.output_quantizer is None
