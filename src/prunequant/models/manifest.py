"""Shape manifest: type and config of every codec-known layer, so a pruned model rebuilds without pickles."""

from __future__ import annotations

from typing import Any

from torch import nn

from prunequant.errors import CheckpointError
from prunequant.models.codecs import codec_for, codec_of
from prunequant.models.jsonsafe import json_safe


def make_manifest(model: nn.Module) -> dict[str, dict[str, Any]]:
    """`{name: {"type": class name, "config": {...}}}` for every submodule whose exact class has a codec."""
    manifest = {}
    for name, module in model.named_modules():
        codec = codec_of(module)
        if name and codec is not None:
            config = json_safe(codec.to_config(module), f"the config of layer '{name}'")
            manifest[name] = {"type": type(module).__name__, "config": config}
    return manifest


def apply_manifest(model: nn.Module, manifest: dict[str, Any]) -> nn.Module:
    """Rebuild from its config every layer of `model` whose type or config differs from `manifest` (in place).

    Parents are handled before children, so a rebuilt layer's own children are then checked in turn.
    """
    for name in sorted(manifest, key=lambda key: key.count(".")):
        type_name, config = _entry(name, manifest[name])
        codec = codec_for(type_name)
        if codec is None:
            raise CheckpointError(
                f"layer '{name}' is a {type_name}, which has no registered codec; "
                "import the package that defines it before loading"
            )
        parent_name, _, leaf = name.rpartition(".")
        try:
            parent = model.get_submodule(parent_name)
        except AttributeError:
            raise CheckpointError(
                f"the checkpoint has a layer '{name}' but the model has no '{parent_name}'; "
                "pass model= with the structure the checkpoint was saved from"
            ) from None
        current = getattr(parent, leaf, None)
        if (
            current is not None
            and codec_of(current) is codec
            and json_safe(codec.to_config(current), name) == config
        ):
            continue
        try:
            setattr(parent, leaf, codec.from_config(dict(config)))
        except Exception as exc:
            raise CheckpointError(
                f"cannot rebuild layer '{name}' ({type_name}) from {config} ({exc})"
            ) from exc
    return model


def _entry(name: str, entry: Any) -> tuple[str, dict[str, Any]]:
    if not (
        isinstance(entry, dict)
        and isinstance(entry.get("type"), str)
        and isinstance(entry.get("config"), dict)
    ):
        raise CheckpointError(
            f"manifest entry '{name}' is malformed ({entry!r}); re-save with save_checkpoint"
        )
    return entry["type"], entry["config"]
