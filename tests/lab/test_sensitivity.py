import pytest

from prunequant.errors import ConfigError
from prunequant.lab.sensitivity import allocate


def _layer(make_row, name, params, reference, amounts, bits=None):
    return make_row(
        "sensitivity",
        extra={
            "layer": name,
            "params": params,
            "reference": reference,
            "amount": amounts,
            "bits": bits or {"8": reference},
            "drop": {
                "amount": {level: reference - value for level, value in amounts.items()},
                "bits": {level: reference - value for level, value in (bits or {"8": reference}).items()},
            },
        },
    )


def test_allocation_prunes_robust_layers_harder_and_hits_the_target(make_row):
    rows = [
        _layer(make_row, "conv1", 100, 0.90, {"0.5": 0.89, "0.9": 0.50}),  # robust up to 0.5
        _layer(make_row, "conv2", 300, 0.90, {"0.5": 0.90, "0.9": 0.89}),  # robust up to 0.9
    ]
    amounts = allocate(rows, target=0.5, tolerance=0.02)
    # k * robustness, with (100 * 0.5 k + 300 * 0.9 k) / 400 = 0.5  ->  k = 0.625
    assert amounts == {"conv1": 0.3125, "conv2": 0.5625}
    assert (100 * amounts["conv1"] + 300 * amounts["conv2"]) / 400 == pytest.approx(0.5)


def test_allocation_caps_amounts_and_gives_fragile_layers_nothing(make_row):
    rows = [
        _layer(make_row, "fragile", 100, 0.9, {"0.5": 0.6}),
        _layer(make_row, "robust", 100, 0.9, {"0.5": 0.9, "0.9": 0.9}),
    ]
    amounts = allocate(rows, target=0.45, tolerance=0.01, cap=0.95)
    assert amounts == {"fragile": 0.0, "robust": 0.9}
    assert allocate(rows, target=0.49, tolerance=0.01, cap=0.95) == {"fragile": 0.0, "robust": 0.95}


def test_allocation_needs_sensitivity_rows(make_row):
    with pytest.raises(ConfigError, match=r"\[sensitivity\] stage"):
        allocate([make_row("post_prune")], 0.5, 0.01)
