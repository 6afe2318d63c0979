"""Every zoo model: pruned 40% it runs, shrinks, matches the masked original, and round-trips a checkpoint."""

from __future__ import annotations

import pytest
import torch

from prunequant.models import build, load_checkpoint, save_checkpoint
from prunequant.profiling import profile
from prunequant.pruning.structured import prune_channels

ZOO = {
    "lenet5": {"in_channels": 1, "input_size": 28},
    "small_cnn": {"in_channels": 1, "input_size": 16},
    "resnet20": {"input_size": 16},
    "resnet56": {"input_size": 16},
    "vgg11": {"input_size": 16},
    "vgg16": {"input_size": 16},
    "mobilenetv2": {"input_size": 16},
    "densenet": {"input_size": 16},
}


def _model_and_input(name: str, randomize_norms):
    torch.manual_seed(0)
    kwargs = ZOO[name]
    model = randomize_norms(build(name, num_classes=7, **kwargs))
    size = kwargs["input_size"]
    return model, torch.randn(2, kwargs.get("in_channels", 3), size, size)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_pruned_shrinks_matches_and_reloads(name, tmp_path, equivalent, randomize_norms):
    model, x = _model_and_input(name, randomize_norms)
    state = {key: value.clone() for key, value in model.state_dict().items()}
    result = prune_channels(model, x, 0.4, round_to=2, return_result=True)
    assert result.skipped_layers == {}
    assert all(
        torch.equal(state[key], value) for key, value in model.state_dict().items()
    )  # original untouched
    pruned, _ = equivalent(model, result, x, atol=1e-4)
    assert pruned.shape == (2, 7)
    before, after = profile(model, x, latency=False).total, profile(result.model, x, latency=False).total
    assert after["params"] < 0.5 * before["params"] and after["macs"] < 0.5 * before["macs"]
    path = save_checkpoint(result.model, tmp_path / f"{name}.pt", pruning=result.meta())
    reloaded, meta = load_checkpoint(path)
    with torch.no_grad():
        assert torch.equal(reloaded(x), result.model.eval()(x))
    assert meta["pruning"]["groups_pruned"] == len(result.groups) > 0


@pytest.mark.parametrize("name", sorted(ZOO))
def test_amount_zero_is_bit_identical(name, randomize_norms):
    model, x = _model_and_input(name, randomize_norms)
    pruned = prune_channels(model, x, 0.0).eval()
    with torch.no_grad():
        assert torch.equal(pruned(x), model(x))
    assert [p.shape for p in pruned.parameters()] == [p.shape for p in model.parameters()]
