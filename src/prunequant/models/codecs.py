"""Module codecs: how a layer type is written to, and rebuilt from, a JSON-safe config (shape manifest)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from prunequant.errors import ModelError


@dataclass(frozen=True)
class Codec:
    """A layer class with its `to_config(module) -> dict` and `from_config(dict) -> module`."""

    cls: type[nn.Module]
    to_config: Callable[[nn.Module], dict[str, Any]]
    from_config: Callable[[dict[str, Any]], nn.Module]


_CODECS: dict[str, Codec] = {}
CONV_CLASSES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def register_module_codec(
    cls: type[nn.Module],
    to_config: Callable[[nn.Module], dict[str, Any]],
    from_config: Callable[[dict[str, Any]], nn.Module],
) -> None:
    """Let checkpoints record and rebuild `cls` layers by shape (exact class match, keyed by class name)."""
    previous = _CODECS.get(cls.__name__)
    if previous is not None and _qualified(previous.cls) != _qualified(cls):
        raise ModelError(
            f"a codec for a class named '{cls.__name__}' is already registered ({_qualified(previous.cls)}); "
            "rename the class"
        )
    _CODECS[cls.__name__] = Codec(cls, to_config, from_config)


def codec_for(type_name: str) -> Codec | None:
    """The codec registered under `type_name`, if any."""
    return _CODECS.get(type_name)


def codec_of(module: nn.Module) -> Codec | None:
    """The codec of `module`'s exact class (a subclass without its own codec has none)."""
    codec = _CODECS.get(type(module).__name__)
    return codec if codec is not None and codec.cls is type(module) else None


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _conv_config(conv: nn.modules.conv._ConvNd) -> dict[str, Any]:
    """Conv1d/2d/3d and transposed convs (which add output_padding)."""
    config = {
        "in_channels": conv.in_channels,
        "out_channels": conv.out_channels,
        "kernel_size": conv.kernel_size,
        "stride": conv.stride,
        "padding": conv.padding,
        "dilation": conv.dilation,
        "groups": conv.groups,
        "bias": conv.bias is not None,
        "padding_mode": conv.padding_mode,
    }
    if conv.transposed:
        config["output_padding"] = conv.output_padding
    return config


def _linear_config(linear: nn.Linear) -> dict[str, Any]:
    return {
        "in_features": linear.in_features,
        "out_features": linear.out_features,
        "bias": linear.bias is not None,
    }


def _batch_norm_config(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> dict[str, Any]:
    return {
        "num_features": bn.num_features,
        "eps": bn.eps,
        "momentum": bn.momentum,
        "affine": bn.affine,
        "track_running_stats": bn.track_running_stats,
    }


for _cls, _to_config in (
    *((cls, _conv_config) for cls in CONV_CLASSES),
    (nn.Linear, _linear_config),
    (nn.BatchNorm1d, _batch_norm_config),
    (nn.BatchNorm2d, _batch_norm_config),
    (nn.Identity, lambda module: {}),
):
    register_module_codec(_cls, _to_config, lambda config, cls=_cls: cls(**config))
for _cls in (
    nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d,
    nn.ReplicationPad1d, nn.ReplicationPad2d, nn.ReplicationPad3d,
):  # fmt: skip
    register_module_codec(_cls, lambda pad: {"padding": pad.padding}, lambda config, cls=_cls: cls(**config))
for _cls in (nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d):
    register_module_codec(
        _cls,
        lambda pad: {"padding": pad.padding, "value": pad.value},
        lambda config, cls=_cls: cls(**config),
    )
