"""QuantConfig: bit widths 2..16 (None = float), choices, per-layer overrides and excludes."""

import pytest

from prunequant.errors import ConfigError
from prunequant.quantization import LayerQuant, QuantConfig


@pytest.mark.parametrize("bits", [1, 17, 33, 0, -8, 8.0, True, "8"])
@pytest.mark.parametrize("field", ["w_bits", "a_bits"])
def test_bits_outside_2_to_16_are_config_errors(field, bits):
    with pytest.raises(ConfigError, match=rf"{field} must be an integer in 2\.\.16"):
        QuantConfig(**{field: bits})


def test_valid_widths_and_float():
    for bits in (2, 9, 16, None):
        assert QuantConfig(w_bits=bits, a_bits=bits).w_bits == bits


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"calibration": "kl"}, "calibration must be one of"),
        ({"percentile": 40}, "percentile"),
        ({"percentile": float("nan")}, "percentile"),
        ({"ema_decay": 1.0}, "ema_decay"),
        ({"ema_decay": 0.0}, "ema_decay"),
        ({"per_channel": "yes"}, "per_channel"),
        ({"quantize_residuals": 1}, "quantize_residuals must be True or False"),
        ({"exclude": "fc"}, "exclude"),
        ({"overrides": {"fc": {"bits": 4}}}, "unknown setting bits"),
        ({"overrides": {"fc": {"w_bits": 1}}}, "w_bits must be"),
        ({"overrides": {"fc": 4}}, "dict of settings"),
    ],
)
def test_bad_values_fail_when_built(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        QuantConfig(**kwargs)


def test_overrides_apply_in_order_and_exclude_wins():
    config = QuantConfig(
        w_bits=8,
        overrides={"layer3.*": {"w_bits": 4}, "layer3.0.*": {"a_bits": 6, "w_bits": 2}},
        exclude=["*.shortcut.*", "fc"],
    )
    assert config.for_layer("layer1.0.conv1") == LayerQuant(w_bits=8, a_bits=8)
    assert config.for_layer("layer3.1.conv1") == LayerQuant(w_bits=4, a_bits=8)
    assert config.for_layer("layer3.0.conv1") == LayerQuant(w_bits=2, a_bits=6)
    assert config.for_layer("layer3.0.shortcut.0") is None
    assert config.for_layer("fc") is None
    assert config.to_dict()["exclude"] == ["*.shortcut.*", "fc"]
