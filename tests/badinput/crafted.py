"""Crafted checkpoint files that load under weights_only yet are wrong: one builder per defect."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from prunequant.models import build


class Payload:
    """A pickle that would run os.system if it were ever unpickled with code allowed."""

    def __reduce__(self):
        return (os.system, ("echo PWNED > pwned.txt",))


def _payload(path: Path, **overrides: Any) -> None:
    model = build("small_cnn", num_classes=10, in_channels=3, input_size=32, width=4)
    from prunequant.models.manifest import make_manifest

    payload: dict[str, Any] = {
        "format": "prunequant",
        "version": 1,
        "state_dict": model.state_dict(),
        "meta": {
            "arch": "small_cnn",
            "arch_kwargs": {"num_classes": 10, "in_channels": 3, "input_size": 32, "width": 4},
            "input_shape": [3, 32, 32],
        },
        "manifest": make_manifest(model),
    }
    for key, value in overrides.items():
        if callable(value):
            value(payload)
        else:
            payload[key] = value
    torch.save(payload, path)


def _zip_bomb(path: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"a": torch.zeros(1)}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, zipfile.ZipFile(path, "w") as bomb:
        for item in source.infolist():
            bomb.writestr(item, source.read(item.filename))
        bomb.writestr("archive/data/999", b"\0" * (64 << 20), compress_type=zipfile.ZIP_DEFLATED)


def _set(*keys: str, value: Any) -> Callable[[dict], None]:
    def apply(payload: dict) -> None:
        target = payload
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return apply


CRAFTED: dict[str, tuple[Callable[[Path], None], str]] = {
    # name: (builder, expected message pattern)
    "meta-is-a-list": (lambda p: _payload(p, meta=[1, 2]), r"meta is a list, not a dict"),
    "meta-arch-is-int": (
        lambda p: _payload(p, x=_set("meta", "arch", value=7)),
        r"meta field 'arch' is a int",
    ),
    "meta-kwargs-is-str": (
        lambda p: _payload(p, x=_set("meta", "arch_kwargs", value="wide")),
        r"meta field 'arch_kwargs' is a str",
    ),
    "meta-shape-bad": (
        lambda p: _payload(p, x=_set("meta", "input_shape", value=[3, -1])),
        r"input_shape \[3, -1\] is not a list of positive sizes",
    ),
    "meta-holds-tensor": (
        lambda p: _payload(p, x=_set("meta", "note", value=torch.zeros(2))),
        r"meta holds a Tensor",
    ),
    "manifest-is-a-list": (lambda p: _payload(p, manifest=[1]), r"manifest is a list, not a dict"),
    "manifest-entry-bad": (
        lambda p: _payload(p, manifest={"conv": {"type": 3}}),
        r"manifest entry 'conv' is malformed",
    ),
    "manifest-huge-layer": (
        lambda p: _payload(
            p,
            manifest={
                "fc": {
                    "type": "Linear",
                    "config": {"in_features": 1 << 30, "out_features": 1 << 30, "bias": True},
                }
            },
        ),
        r"holds the size 1,073,741,824 .*refused before allocating",
    ),
    "manifest-big-but-allowed-layer": (
        lambda p: _payload(
            p,
            manifest={"fc": {"type": "Linear", "config": {"in_features": 1 << 20, "out_features": 1 << 20}}},
        ),
        r"does not match the model",
    ),
    "manifest-too-many-entries": (
        lambda p: _payload(p, manifest={f"l{i}": {"type": "Identity", "config": {}} for i in range(100_001)}),
        r"manifest has 100,001 entries",
    ),
    "kwargs-huge-width": (
        lambda p: _payload(p, x=_set("meta", "arch_kwargs", "width", value=1 << 26)),
        r"arch_kwargs holds the size",
    ),
    "kwargs-wide-but-allowed": (
        lambda p: _payload(p, x=_set("meta", "arch_kwargs", "width", value=4096)),
        r"would allocate .* MiB for .* of weights; refused",
    ),
    "state-entry-not-tensor": (
        lambda p: _payload(p, x=_set("state_dict", "fc.weight", value=[1.0, 2.0])),
        r"state_dict entry 'fc.weight' is a list, not a tensor",
    ),
    "state-is-a-list": (
        lambda p: _payload(p, state_dict=[torch.zeros(1)]),
        r"has no state_dict \(found list\)",
    ),
    "version-is-str": (lambda p: _payload(p, version="1"), r"format version '1'"),
    "pickle-with-code": (lambda p: torch.save({"a": Payload()}, p), r"holds Python code .*and was refused"),
    "zip-bomb": (_zip_bomb, r"zip bomb|unpacks .* refused"),
    "empty-file": (lambda p: p.write_bytes(b""), r"empty, 0 bytes"),
    "random-bytes": (lambda p: p.write_bytes(os.urandom(3000)), r"not a readable checkpoint"),
}
