"""Zoo models: shapes, fx-traceability, hook-friendly structure and published parameter / MAC counts."""

from __future__ import annotations

import pytest
import torch
import torch.fx
from torch import nn

from prunequant.errors import ConfigError
from prunequant.models import available_models, build


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Conv + Linear multiply-accumulates of one sample, from a shape-only forward on the meta device."""
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total += output[0].numel() * per_output
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [module.register_forward_hook(hook) for module in model.modules()]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *shape, device="meta"))
    for handle in handles:
        handle.remove()
    return total


def build_on_meta(name: str, **kwargs: object) -> nn.Module:
    with torch.device("meta"):
        return build(name, **kwargs)


def test_every_registered_model_is_tested(natural_shapes: dict[str, tuple[int, int]]) -> None:
    assert sorted(natural_shapes) == available_models("classification")  # the others: test_seed_models.py


def test_forward_shape_and_fx_trace(zoo_name, zoo_kwargs, zoo_input) -> None:
    model = build(zoo_name, num_classes=7, **zoo_kwargs(zoo_name)).eval()
    x = zoo_input(zoo_name)
    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 7)
        assert torch.equal(traced(x), out)


@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32)])
def test_other_input_shapes(zoo_name: str, channels: int, size: int) -> None:
    model = build(zoo_name, in_channels=channels, input_size=size).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, channels, size, size)).shape == (1, 10)


def test_each_module_is_called_once_and_activations_are_modules(zoo_name, zoo_kwargs) -> None:
    """One module per use (so activation hooks are unambiguous) and no functional ReLU in forward."""
    graph = torch.fx.symbolic_trace(build(zoo_name, **zoo_kwargs(zoo_name))).graph
    called = [node.target for node in graph.nodes if node.op == "call_module"]
    assert len(called) == len(set(called))
    functional = {torch.relu, nn.functional.relu, nn.functional.relu6}
    assert not [node for node in graph.nodes if node.op == "call_function" and node.target in functional]


@pytest.mark.parametrize("size", [28, 32])
def test_lenet5_has_exactly_61706_params(size: int) -> None:
    model = build("lenet5", in_channels=1, input_size=size)
    assert count_params(model) == 61_706
    assert model.fc1.in_features == 400


@pytest.mark.parametrize(
    "name, params, macs",
    [("resnet20", 0.27e6, 41e6), ("resnet56", 0.85e6, 125e6)],
)
def test_cifar_resnet_counts_match_published(name: str, params: float, macs: float) -> None:
    model = build_on_meta(name)
    assert count_params(model) == pytest.approx(params, rel=0.02)
    assert count_macs(model, (3, 32, 32)) == pytest.approx(macs, rel=0.02)


def test_cifar_resnet_module_names() -> None:
    model = build("resnet20")
    top = ["conv1", "bn1", "relu", "layer1", "layer2", "layer3", "avgpool", "fc"]
    assert [name for name, _ in model.named_children()] == top
    block = ["conv1", "bn1", "relu1", "conv2", "bn2", "shortcut", "relu2"]
    assert [name for name, _ in model.layer1[0].named_children()] == block
    assert isinstance(model.layer1[0].shortcut, nn.Identity)
    assert isinstance(model.layer2[0].shortcut[0], nn.Conv2d)
    assert [len(stage) for stage in (model.layer1, model.layer2, model.layer3)] == [3, 3, 3]


def test_vgg16_imagenet_counts_match_torchvision() -> None:
    plain = build_on_meta("vgg16", num_classes=1000, input_size=224, batch_norm=False)
    assert count_params(plain) == 138_357_544
    assert count_macs(plain, (3, 224, 224)) == pytest.approx(15.5e9, rel=0.01)
    with_bn = build_on_meta("vgg16", num_classes=1000, input_size=224)
    assert count_params(with_bn) - count_params(plain) == 2 * 4224


def test_vgg_head_follows_input_size() -> None:
    assert build_on_meta("vgg11", input_size=32).avgpool.output_size == 1
    assert build_on_meta("vgg11", input_size=224).avgpool.output_size == 7
    assert build_on_meta("vgg11", input_size=32, head="imagenet").avgpool.output_size == 7
    with pytest.raises(ConfigError, match="head"):
        build("vgg11", head="tiny")


def test_small_cnn_is_grouped_and_sized_for_fashion_mnist() -> None:
    model = build("small_cnn", in_channels=1, input_size=28)
    assert 150_000 <= count_params(model) <= 300_000
    groups = [name for name, _ in model.features.named_children()]
    assert groups == ["block1", "block2", "block3"]
    assert min(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)) >= 32


def test_mobilenetv2_strides_and_width() -> None:
    cifar = build("mobilenetv2").eval()
    with torch.no_grad():
        assert cifar.features(torch.zeros(1, 3, 32, 32)).shape[-1] == 4
    assert count_params(build_on_meta("mobilenetv2", num_classes=1000, input_size=224)) == pytest.approx(
        3.5e6, rel=0.01
    )
    assert count_params(build_on_meta("mobilenetv2", width_mult=0.5)) < count_params(cifar)


def test_densenet_concatenates_growth() -> None:
    model = build("densenet", depth=16, growth_rate=4)
    assert len(model.block1) == 2
    assert model.trans1.conv.in_channels == 2 * 4 + 2 * 4
    with pytest.raises(ConfigError, match="6n \\+ 4"):
        build("densenet", depth=41)


def test_too_small_input_for_lenet_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="input_size"):
        build("lenet5", input_size=12)
