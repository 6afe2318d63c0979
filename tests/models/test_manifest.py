"""Shape manifest and codec registry: what is recorded, what is rebuilt, and how bad entries fail."""

from __future__ import annotations

import json

import pytest
from torch import nn

from prunequant.errors import CheckpointError, ModelError
from prunequant.models import build, codecs, register_module_codec
from prunequant.models.manifest import apply_manifest, make_manifest


class ScaledLinear(nn.Module):
    """A stand-in for another subpackage's wrapper layer: a Linear child plus a plain-data setting."""

    def __init__(self, features: int, scale: float) -> None:
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.scale = scale

    def forward(self, x):
        return self.linear(x) * self.scale


@pytest.fixture
def isolated_codecs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codecs, "_CODECS", dict(codecs._CODECS))


@pytest.fixture
def scaled_codec(isolated_codecs: None) -> None:
    register_module_codec(
        ScaledLinear,
        lambda module: {"features": module.linear.in_features, "scale": module.scale},
        lambda config: ScaledLinear(**config),
    )


def test_manifest_records_codec_layers_as_json() -> None:
    manifest = make_manifest(build("resnet20"))
    assert manifest["layer2.0.conv1"] == {
        "type": "Conv2d",
        "config": {
            "in_channels": 16,
            "out_channels": 32,
            "kernel_size": [3, 3],
            "stride": [2, 2],
            "padding": [1, 1],
            "dilation": [1, 1],
            "groups": 1,
            "bias": False,
            "padding_mode": "zeros",
        },
    }
    assert manifest["layer1.0.shortcut"] == {"type": "Identity", "config": {}}
    assert manifest["fc"]["config"] == {"in_features": 64, "out_features": 10, "bias": True}
    assert manifest["bn1"]["config"]["num_features"] == 16
    assert "relu" not in manifest and "" not in manifest
    json.dumps(manifest)


def test_subclasses_without_their_own_codec_are_not_recorded() -> None:
    class MyConv(nn.Conv2d):
        pass

    assert make_manifest(nn.Sequential(MyConv(1, 2, 3), nn.Conv2d(2, 2, 1))).keys() == {"1"}


def test_matching_manifest_keeps_every_module() -> None:
    model = build("resnet20")
    before = dict(model.named_modules())
    apply_manifest(model, make_manifest(build("resnet20")))
    assert all(module is before[name] for name, module in model.named_modules())


def test_changed_layers_are_rebuilt_in_sequentials_and_blocks() -> None:
    pruned = build("vgg11")
    pruned.features[0] = nn.Conv2d(3, 40, 3, padding=1)
    pruned.features[1] = nn.BatchNorm2d(40)
    pruned.features[4] = nn.Conv2d(40, 128, 3, padding=1)
    model = apply_manifest(build("vgg11"), make_manifest(pruned))
    assert (model.features[0].out_channels, model.features[1].num_features) == (40, 40)
    assert model.features[4].in_channels == 40
    assert model.state_dict().keys() == pruned.state_dict().keys()


def test_wrapper_layers_are_rebuilt_before_their_children(scaled_codec: None) -> None:
    pruned = build("lenet5", in_channels=1)
    pruned.relu4 = ScaledLinear(84, 0.5)
    model = apply_manifest(build("lenet5", in_channels=1), make_manifest(pruned))
    assert isinstance(model.relu4, ScaledLinear) and model.relu4.scale == 0.5


def test_unknown_codec_type_is_a_checkpoint_error() -> None:
    manifest = {"fc": {"type": "NoSuchLayerType", "config": {}}}
    with pytest.raises(CheckpointError, match="NoSuchLayerType, which has no registered codec; import"):
        apply_manifest(build("resnet20"), manifest)


@pytest.mark.parametrize(
    "manifest, message",
    [
        ({"nowhere.conv": {"type": "Identity", "config": {}}}, "has no 'nowhere'"),
        ({"fc": {"type": "Linear"}}, "malformed"),
        (
            {"fc": {"type": "Linear", "config": {"in_features": -1, "out_features": 2}}},
            "cannot rebuild layer 'fc'",
        ),
    ],
)
def test_bad_manifests_are_checkpoint_errors(manifest: dict, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        apply_manifest(build("resnet20"), manifest)


def test_codec_names_must_be_unique(isolated_codecs: None) -> None:
    class Linear(nn.Module):
        pass

    with pytest.raises(ModelError, match="already registered"):
        register_module_codec(Linear, lambda module: {}, lambda config: Linear())
