"""The README's plugin-point examples run as written and register what they say."""

from __future__ import annotations

import pytest
import torch

import prunequant as pq
from prunequant.errors import ConfigError
from prunequant.pruning.structured import op_tables
from prunequant.pruning.structured.importance import available_importances


@pytest.fixture
def plugin_blocks(readme_blocks):
    blocks = readme_blocks("## Plugin points")
    assert len(blocks) == 4
    return dict(zip(("importance", "model", "dataset", "op"), blocks, strict=True))


def _run(code):
    namespace = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace


def test_register_importance_example(plugin_blocks):
    namespace = _run(plugin_blocks["importance"])
    assert "max_abs" in available_importances()
    small, model = namespace["small"], namespace["model"]
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())


def test_register_model_example(plugin_blocks):
    namespace = _run(plugin_blocks["model"])
    assert "two_conv" in pq.models.available_models()
    assert namespace["model"](torch.randn(2, 1, 8, 8)).shape == (2, 4)


def test_register_dataset_example(plugin_blocks):
    namespace = _run(plugin_blocks["dataset"])
    images, labels = next(iter(namespace["loaders"].train))
    assert images.shape[1:] == (1, 16, 16) and set(labels.tolist()) <= {0, 1}


def test_register_op_example_makes_an_unknown_op_prunable(plugin_blocks):
    assert "log_sigmoid" not in op_tables.ELEMENTWISE  # unknown before: its groups would stay unpruned
    namespace = _run(plugin_blocks["op"])
    assert "log_sigmoid" in op_tables.ELEMENTWISE and namespace["small"].conv1.out_channels == 8


def test_register_op_takes_a_torch_layer_class_and_spatial_functions():
    def softsign_net():
        return torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.Softsign(), torch.nn.Conv2d(16, 4, 3))

    x = torch.randn(1, 3, 12, 12)
    with pytest.warns(UserWarning, match="unpruned"):
        assert pq.prune_channels(softsign_net(), x, 0.5)[0].out_channels == 16  # unknown: left alone
    pq.register_op(torch.nn.Softsign, "elementwise")
    assert pq.prune_channels(softsign_net(), x, 0.5)[0].out_channels == 8
    pq.register_op("my_blur2d", "spatial", dims=2)
    assert op_tables.SPATIAL_FUNCTIONS["my_blur2d"] == 2
    for args, message in (
        (("relu", "channelwise"), "kind must be one of"),
        ((torch.nn.Conv2d, "elementwise"), "weightless nn.Module class"),
        (("relu", "elementwise"), None),
        ((42, "elementwise"), "op must be a name"),
    ):
        if message is None:
            pq.register_op(*args)  # registering a known op again is harmless
            continue
        with pytest.raises(ConfigError, match=message):
            pq.register_op(*args)
    with pytest.raises(ConfigError, match="dims is a positive integer"):
        pq.register_op("my_op", "elementwise", dims=2)
