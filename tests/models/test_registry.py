"""Registry: build, register_model and `package.module:factory` specs, with typed one-line errors."""

from __future__ import annotations

import copy
import textwrap

import pytest
import torch
import torch.fx
from torch import nn

from prunequant.errors import ConfigError, ModelError
from prunequant.models import build, build_from_spec, register_model, registry


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))


@pytest.fixture
def factory_module(tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An importable module `user_models` with a few factories; returns its name."""
    (tmp_path / "user_models.py").write_text(
        textwrap.dedent(
            """
            from torch import nn

            def mlp(num_classes=10, hidden=8):
                layers = [nn.Flatten(), nn.LazyLinear(hidden), nn.ReLU(), nn.Linear(hidden, num_classes)]
                return nn.Sequential(*layers)

            def anything(**kwargs):
                model = nn.Linear(2, 2)
                model.seen = kwargs
                return model

            def not_a_model(num_classes=10):
                return "oops"

            def broken(num_classes=10):
                raise RuntimeError("boom")

            NOT_CALLABLE = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "user_models"


def test_build_stamps_arch_without_touching_state_or_tracing() -> None:
    model = build("resnet20", num_classes=5)
    assert model.prunequant_arch == {
        "name": "resnet20",
        "kwargs": {"num_classes": 5, "in_channels": 3, "input_size": 32},
    }
    assert not any("arch" in key for key in model.state_dict())
    torch.fx.symbolic_trace(model)
    assert copy.deepcopy(model).prunequant_arch == model.prunequant_arch


def test_names_are_case_insensitive_and_unknown_ones_get_a_suggestion() -> None:
    assert build("ResNet20").prunequant_arch["name"] == "resnet20"
    with pytest.raises(ModelError, match="did you mean 'resnet20'") as error:
        build("resnet-20")
    assert "\n" not in str(error.value)


def test_unknown_option_lists_the_accepted_ones() -> None:
    with pytest.raises(ModelError, match="no option depht; its options are: depth, growth_rate"):
        build("densenet", depht=40)


@pytest.mark.parametrize("field, value", [("num_classes", 0), ("in_channels", -1), ("input_size", 2.5)])
def test_shape_arguments_are_validated(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        build("lenet5", **{field: value})


def test_register_model_adds_to_the_zoo(isolated_registry: None) -> None:
    @register_model("tiny")
    def tiny(*, num_classes: int, in_channels: int, input_size: int, hidden: int = 4) -> nn.Module:
        return nn.Sequential(
            nn.Flatten(), nn.Linear(in_channels * input_size**2, hidden), nn.Linear(hidden, num_classes)
        )

    assert "tiny" in registry.available_models()
    model = build("tiny", num_classes=3, in_channels=1, input_size=4, hidden=2)
    assert model(torch.zeros(1, 1, 4, 4)).shape == (1, 3)
    assert model.prunequant_arch["kwargs"]["hidden"] == 2
    with pytest.raises(ModelError, match="already registered"):
        register_model("tiny")(lambda **kwargs: nn.Identity())


def test_spec_with_zoo_name_builds_from_zoo() -> None:
    model = build_from_spec("lenet5", num_classes=4, in_channels=1, input_size=28)
    assert model.prunequant_arch["name"] == "lenet5"
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 4)


def test_spec_drops_kwargs_the_factory_does_not_take(factory_module: str) -> None:
    model = build_from_spec(f"{factory_module}:mlp", num_classes=3, in_channels=1, input_size=28)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 3)
    assert model.prunequant_arch == {"name": f"{factory_module}:mlp", "kwargs": {"num_classes": 3}}
    catch_all = build_from_spec(f"{factory_module}:anything", num_classes=3, input_size=28)
    assert catch_all.seen == {"num_classes": 3, "input_size": 28}


@pytest.mark.parametrize(
    "attr, message",
    [
        ("missing", "not a callable factory"),
        ("NOT_CALLABLE", "not a callable factory"),
        ("not_a_model", "returned str, not an nn.Module"),
        ("broken", "failed \\(RuntimeError: boom\\)"),
    ],
)
def test_bad_factories_raise_model_error(factory_module: str, attr: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        build_from_spec(f"{factory_module}:{attr}")


@pytest.mark.parametrize("spec", ["no_such_module_xyz:make", ":make", "user_models:"])
def test_malformed_or_unimportable_specs(spec: str) -> None:
    with pytest.raises(ModelError, match="spec"):
        build_from_spec(spec)
