import json

import pytest
import torch
from torch import nn

from prunequant.profiling import profile


def test_conv_and_linear_formulas():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
    report = profile(model, torch.randn(2, 3, 4, 4), latency=False)
    conv, relu, flat, fc = report.layers
    assert conv["macs"] == 4 * 4 * 8 * 3 * 9
    assert conv["flops"] == 2 * 4 * 4 * (3 * 9 + 1) * 8  # seed 000 eq. (3)
    assert conv["formula_params"] == (3 * 3 * 3 + 1) * 8 == conv["params"]  # eq. (1)
    assert fc["macs"] == 128 * 5 and fc["flops"] == 2 * 128 * 5  # eq. (4)
    assert fc["formula_params"] == (128 + 1) * 5 == fc["params"]  # eq. (2), intended form
    assert relu["macs"] == 0 and relu["activation_elements"] == 8 * 16
    assert report.total["params"] == sum(p.numel() for p in model.parameters())
    assert report.total["activation_bytes"] == 4 * (128 * 3 + 5)


def test_grouped_conv_and_no_bias():
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    report = profile(nn.Sequential(conv), torch.randn(1, 8, 5, 5), latency=False)
    row = report.layers[0]
    assert row["macs"] == 5 * 5 * 8 * 9
    assert row["formula_params"] == row["params"] == 72


def test_zeroed_weights_show_in_nonzero_and_effective_macs():
    model = nn.Sequential(nn.Linear(10, 10, bias=False))
    with torch.no_grad():
        model[0].weight[:, :5] = 0
    report = profile(model, torch.randn(1, 10), latency=False)
    assert report.total["params"] == 100
    assert report.total["nonzero_params"] == 50
    assert report.total["macs"] == 100 and report.total["effective_macs"] == 50


def test_groups_sum_to_total_and_json_ready(tiny_model):
    report = profile(tiny_model, torch.randn(4, 1, 8, 8), repeats=3)
    for key in ("params", "macs", "flops", "activation_bytes"):
        assert sum(g[key] for g in report.groups) == report.total[key]
    assert report.total["latency_ms"] > 0
    assert all(row.get("latency_ms") is not None for row in report.layers)
    assert json.loads(json.dumps(report.to_dict()))["total"]["params"] == report.total["params"]


def test_profile_restores_training_mode(tiny_model):
    tiny_model.train()
    profile(tiny_model, torch.randn(1, 1, 8, 8), latency=False)
    assert tiny_model.training


def test_csv_and_table(tmp_path, tiny_model):
    report = profile(tiny_model, torch.randn(1, 1, 8, 8), latency=False)
    path = report.to_csv(tmp_path / "layers.csv")
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + len(report.layers)
    assert report.table().row_count == len(report.groups) + 1


def test_group_latencies_add_up_to_the_total(tiny_model):
    report = profile(tiny_model, torch.randn(4, 1, 8, 8), repeats=4)
    total = report.total
    groups = sum(group["latency_ms"] for group in report.groups)
    assert total["other_latency_ms"] >= 0
    assert groups + total["other_latency_ms"] == pytest.approx(total["latency_ms"])
    assert total["latency_p10_ms"] <= total["latency_ms"] <= total["latency_p90_ms"]
    assert isinstance(total["latency_noisy"], bool) and total["latency_threads"]["used"] >= 1
    table = report.table()
    assert table.row_count == len(report.groups) + 2 and "share of TOTAL" in str(table.caption)


@pytest.mark.parametrize(
    "name, kwargs, params, macs, tol",
    [
        ("resnet20", dict(input_size=32), 0.27e6, 41e6, 0.02),
        ("resnet56", dict(input_size=32), 0.85e6, 125e6, 0.02),
        ("lenet5", dict(in_channels=1, input_size=32), 61_706, None, 0.0),
    ],
)
def test_published_counts(name, kwargs, params, macs, tol):
    from prunequant.models import build

    model = build(name, **kwargs)
    channels = kwargs.get("in_channels", 3)
    report = profile(
        model, torch.randn(1, channels, kwargs["input_size"], kwargs["input_size"]), latency=False
    )
    assert report.total["params"] == pytest.approx(params, rel=tol)
    if macs:
        assert report.total["macs"] == pytest.approx(macs, rel=tol)


def test_vgg16_imagenet_counts():
    from prunequant.models import build

    model = build("vgg16", num_classes=1000, input_size=224, batch_norm=False, head="imagenet")
    report = profile(model, torch.randn(1, 3, 224, 224), latency=False)
    assert report.total["params"] == 138_357_544
    assert report.total["macs"] == pytest.approx(15.5e9, rel=0.01)
