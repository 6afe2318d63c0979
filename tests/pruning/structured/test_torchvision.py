"""torchvision's ImageNet models (skipped without torchvision): prune 30%, same checks as the zoo."""

from __future__ import annotations

import pytest
import torch

from prunequant.models import load_checkpoint, save_checkpoint
from prunequant.profiling import profile
from prunequant.pruning.structured import prune_channels

torchvision = pytest.importorskip("torchvision")

MODELS = [
    "resnet18", "resnet50", "vgg16_bn", "mobilenet_v2", "mobilenet_v3_small", "densenet121",
    "efficientnet_b0", "shufflenet_v2_x1_0", "regnet_x_400mf", "squeezenet1_1", "googlenet",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_torchvision_model(name, tmp_path, equivalent, randomize_norms):
    torch.manual_seed(0)
    options = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    model = randomize_norms(torchvision.models.get_model(name, weights=None, num_classes=10, **options))
    x = torch.randn(2, 3, 64, 64)
    result = prune_channels(model, x, 0.3, return_result=True)
    pruned, _ = equivalent(model, result, x, atol=1e-3)
    assert pruned.shape == (2, 10)
    before, after = profile(model, x, latency=False).total, profile(result.model, x, latency=False).total
    assert after["params"] < before["params"] and after["macs"] < before["macs"]
    path = save_checkpoint(result.model, tmp_path / "m.pt")
    reloaded, _ = load_checkpoint(
        path, model=torchvision.models.get_model(name, weights=None, num_classes=10, **options)
    )
    with torch.no_grad():
        assert torch.equal(reloaded(x), result.model.eval()(x))
    with torch.no_grad():
        assert torch.equal(prune_channels(model, x, 0.0).eval()(x), model(x))
