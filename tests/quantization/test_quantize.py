"""quantize(): module replacement (qsparse placement), copies, mixed precision, BN folding, calibration."""

import copy

import pytest
import torch
from torch import nn

from prunequant.errors import ConfigError, ModelError, UnsupportedLayerError
from prunequant.models import build
from prunequant.quantization import (
    QuantAct,
    QuantConfig,
    QuantConv2d,
    QuantLinear,
    activation_quantizers,
    calibrate,
    fold_batchnorm,
    quantize,
    quantized_layers,
)


def test_tiny_model_placement_and_the_original_is_untouched(tiny_model, blob_loaders):
    x = torch.randn(4, 1, 8, 8)
    before = tiny_model.eval()(x)
    qmodel = quantize(tiny_model, QuantConfig(), blob_loaders[0], calib_batches=2)
    assert [type(m).__name__ for m in tiny_model.children()][:3] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert isinstance(qmodel.conv1, QuantConv2d) and isinstance(qmodel.conv2, QuantConv2d)
    assert isinstance(qmodel.fc, QuantLinear)
    assert isinstance(qmodel.relu1, QuantAct) and isinstance(qmodel.relu2, QuantAct)
    assert qmodel.conv1.input_quantizer is not None and qmodel.conv2.input_quantizer is None
    assert qmodel.fc.input_quantizer is not None and qmodel.fc.output_quantizer is None  # pooled in, logits
    assert qmodel.conv1.weight is not tiny_model.conv1.weight
    assert torch.equal(tiny_model(x), before)
    after = qmodel(x)
    assert not torch.equal(after, before) and torch.allclose(after, before, atol=0.05)


def test_resnet_quantizes_every_relu_block_output_and_the_input():
    model = build("resnet20", num_classes=10, in_channels=3, input_size=32)
    relus = sum(isinstance(m, nn.ReLU) for m in model.modules())
    qmodel = quantize(model, QuantConfig(quantize_residuals=False))
    assert relus == 19 and sum(isinstance(m, QuantAct) for m in qmodel.modules()) == relus
    float_left = [
        name
        for name, m in qmodel.named_modules()
        if type(m) in (nn.Conv2d, nn.Linear) or (type(m) is nn.ReLU and not name.endswith(".activation"))
    ]
    assert float_left == []
    assert isinstance(qmodel.layer2[0].relu2, QuantAct)  # the ReLU after the residual add: block output
    assert isinstance(qmodel.layer2[0].shortcut[0], QuantConv2d)
    readers = [name for name, m in qmodel.named_modules() if isinstance(m, QuantConv2d) and m.input_quantizer]
    assert readers == ["conv1"]
    assert len(activation_quantizers(qmodel)) == relus + 1


def test_residual_branches_are_quantized_where_they_end():
    model = build("resnet20", num_classes=10, in_channels=3, input_size=32)
    qmodel = quantize(model)
    wrapped = [name for name, m in qmodel.named_modules() if isinstance(m, QuantAct)]
    branch_ends = [name for name in wrapped if not name.endswith(("relu", "relu1", "relu2"))]
    blocks = [f"layer{stage}.{block}" for stage in (1, 2, 3) for block in range(3)]
    ends = {"layer2.0": ("bn2", "shortcut.1"), "layer3.0": ("bn2", "shortcut.1")}  # projection shortcuts
    assert branch_ends == [f"{block}.{end}" for block in blocks for end in ends.get(block, ("bn2",))]
    assert len(wrapped) == 19 + 11
    assert type(qmodel.layer1[0].bn2.activation) is nn.BatchNorm2d
    assert "layer1.0.bn2.activation.running_mean" in qmodel.state_dict()
    layers = dict(quantized_layers(qmodel))
    assert [n for n, m in layers.items() if m.input_quantizer] == ["conv1", "fc"]  # fc reads the pooling
    assert not any(m.output_quantizer for m in layers.values())  # the logits stay float
    assert len(activation_quantizers(qmodel)) == 19 + 11 + 2


def test_weight_quantizer_exposes_onnx_ready_qparams(qmodel):
    wq, iq, aq = qmodel.conv2.weight_quantizer, qmodel.conv1.input_quantizer, qmodel.relu1.act_quantizer
    assert (wq.bits, wq.qmin, wq.qmax, wq.axis) == (8, -127, 127, 0)
    assert wq.scale.shape == (16,) and torch.all(wq.zero_point == 0)
    expected = qmodel.conv2.weight.detach().abs().flatten(1).amax(1) / 127
    assert torch.allclose(wq.scale, expected)
    for act in (iq, aq):
        assert (act.bits, act.qmin, act.qmax, act.axis) == (8, 0, 255, None)
        assert act.scale.dim() == 0 and act.zero_point.dtype == torch.int32
    assert aq.zero_point.item() == 0  # ReLU outputs start at 0


def test_mixed_precision_exclude_and_float_sides(tiny_model):
    qmodel = quantize(
        tiny_model, QuantConfig(overrides={"conv2": {"w_bits": 4}, "relu*": {"a_bits": 6}}, exclude=["fc"])
    )
    assert qmodel.conv1.weight_quantizer.bits == 8 and qmodel.conv2.weight_quantizer.bits == 4
    assert qmodel.relu1.act_quantizer.bits == 6 and qmodel.conv1.input_quantizer.bits == 8
    assert type(qmodel.fc) is nn.Linear
    weights_only = quantize(tiny_model, QuantConfig(a_bits=None))
    assert not activation_quantizers(weights_only) and type(weights_only.relu1) is nn.ReLU
    acts_only = quantize(tiny_model, QuantConfig(w_bits=None))
    assert acts_only.conv1.weight_quantizer is None and acts_only.conv1.input_quantizer is not None
    assert type(acts_only.conv2) is nn.Conv2d and isinstance(acts_only.relu2, QuantAct)


def test_relu6_is_quantized_and_a_non_conv_input_reader_stays_float():
    model = nn.Sequential(nn.BatchNorm2d(1), nn.Conv2d(1, 4, 3), nn.ReLU6(), nn.Flatten(), nn.Linear(36, 2))
    with pytest.warns(UserWarning, match="input stays float"):
        qmodel = quantize(model, QuantConfig(quantize_residuals=False))
    assert isinstance(qmodel[2], QuantAct) and isinstance(qmodel[2].activation, nn.ReLU6)
    assert qmodel[1].input_quantizer is None
    with pytest.warns(UserWarning, match="input stays float"):
        qmodel = quantize(model)
    assert qmodel[1].input_quantizer is not None  # the BN's output: the conv then computes in integers
    assert qmodel[4].input_quantizer is None  # a ReLU6 output, flattened


def _quantizer_places(qmodel: nn.Module) -> dict[str, int]:
    """{where: bits} of every activation quantizer."""
    places = {name: m.act_quantizer.bits for name, m in qmodel.named_modules() if isinstance(m, QuantAct)}
    for name, layer in quantized_layers(qmodel):
        for role in ("input", "output"):
            quantizer = getattr(layer, f"{role}_quantizer")
            if quantizer is not None:
                places[f"{name}:{role}"] = quantizer.bits
    return places


def test_branch_outputs_sums_and_pools_get_quantizers_under_their_own_names(branches):
    batches = [torch.randn(4, 1, 6, 6) for _ in range(2)]
    config = QuantConfig(overrides={"conv2": {"a_bits": 6}, "bn3": {"a_bits": 5}})
    qmodel = quantize(branches(), config, batches)
    assert _quantizer_places(qmodel) == {
        "relu": 8,  # called twice, one quantizer
        "bn3": 5,  # the BN ending the conv3 branch
        "conv1:input": 8,
        "conv2:output": 6,  # no BN: the conv's own output quantizer
        "conv4:input": 8,  # reads the sum
        "fc:input": 8,  # reads a functional pooling; its output (the logits) stays float
    }
    assert type(qmodel.bn3.activation) is nn.BatchNorm2d
    assert all(q.calibrated for q in activation_quantizers(qmodel))
    assert qmodel.conv2.output_quantizer.scale > 0 and qmodel(batches[0]).shape == (4, 3)
    excluded = quantize(branches(), QuantConfig(exclude=["bn3", "conv4"]))
    assert type(excluded.bn3) is nn.BatchNorm2d and type(excluded.conv4) is nn.Conv2d
    folded = quantize(branches().eval(), QuantConfig(fold_bn=True, w_bits=None))
    assert type(folded.bn3.activation) is nn.Identity and type(folded.conv3) is nn.Conv2d
    assert set(_quantizer_places(folded)) == set(_quantizer_places(qmodel))


def test_mobilenetv2_quantizes_linear_bottlenecks_and_each_residual_sum_once():
    qmodel = quantize(build("mobilenetv2", num_classes=10, in_channels=3, input_size=32))
    wrapped_bns = [
        name
        for name, m in qmodel.named_modules()
        if isinstance(m, QuantAct) and type(m.activation) is nn.BatchNorm2d
    ]
    assert wrapped_bns == [f"features.{i}.conv.{1 if i == 1 else 2}.1" for i in range(1, 18)]
    places = _quantizer_places(qmodel)
    assert [name for name in places if ":" in name] == ["features.0.0:input", "classifier.1:input"]
    # each residual sum is quantized once, at its block's output, for the next conv and the next sum alike
    residual = [name for name, m in qmodel.named_modules() if getattr(m, "use_residual", False)]
    with_output = [name for name, m in qmodel.named_modules() if hasattr(m, "block_output_quantizer")]
    assert with_output == residual == [f"features.{i}" for i in (3, 5, 6, 8, 9, 10, 12, 13, 15, 16)]


def test_untraceable_model_warns_and_keeps_the_input_float():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return self.conv(x) if x.sum() > 0 else self.conv(-x)

    with pytest.warns(UserWarning, match="torch.fx"):
        qmodel = quantize(Branchy(), QuantConfig(a_bits=8))
    assert qmodel.conv.input_quantizer is None
    with pytest.raises(UnsupportedLayerError, match="fold_bn"):
        quantize(Branchy(), QuantConfig(fold_bn=True))


def test_uncalibrated_model_refuses_to_evaluate_and_calibrate_fixes_it(tiny_model, blob_loaders):
    qmodel = quantize(tiny_model).eval()
    with pytest.raises(ModelError, match="calibrate"):
        qmodel(torch.randn(2, 1, 8, 8))
    calibrate(qmodel, blob_loaders[0], num_batches=1)
    assert all(q.calibrated and not q.observing for q in activation_quantizers(qmodel))
    assert qmodel(torch.randn(2, 1, 8, 8)).shape == (2, 4)
    with pytest.raises(ConfigError, match="already quantized"):
        quantize(qmodel)


def test_calibration_uses_min_max_of_exactly_the_first_batches(tiny_model, blob_loaders):
    qmodel = quantize(tiny_model)
    calibrate(qmodel, blob_loaders[1], num_batches=1)
    first = next(iter(blob_loaders[1]))[0]
    observer = qmodel.conv1.input_quantizer.observer
    assert observer.lower.item() == first.min().item() and observer.upper.item() == first.max().item()


def _with_bn_statistics(model, loader):
    model.train()
    with torch.no_grad():
        for inputs, _ in loader:
            model(inputs)
    return model.eval()


def test_fold_bn_keeps_float_outputs_and_leaves_identities(tiny_model, blob_loaders):
    model = _with_bn_statistics(tiny_model, blob_loaders[0])
    folded = copy.deepcopy(model)
    assert fold_batchnorm(folded) == [("conv1", "bn1"), ("conv2", "bn2")]
    assert type(folded.bn1) is nn.Identity and folded.conv1.bias is not None
    x = torch.randn(8, 1, 8, 8)
    assert torch.allclose(folded(x), model(x), atol=1e-5)
    qmodel = quantize(model, QuantConfig(fold_bn=True, w_bits=8, a_bits=None))
    assert type(qmodel.bn2) is nn.Identity and isinstance(qmodel.conv2, QuantConv2d)
    assert torch.allclose(qmodel(x), model(x), atol=0.05)
