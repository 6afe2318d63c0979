"""Checkpoint I/O: atomic save; weights_only load that rebuilds pruned layer shapes from the manifest."""

from __future__ import annotations

import copy
import io
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunequant.atomic import atomic_write
from prunequant.builtin import resolve_checkpoint
from prunequant.errors import CheckpointError, ModelError, PrunequantError
from prunequant.models.jsonsafe import json_safe
from prunequant.models.loadguard import check_build_size, check_file, check_payload
from prunequant.models.manifest import apply_manifest, make_manifest
from prunequant.models.registry import ARCH_ATTR, available_models, build

FORMAT = "prunequant"
VERSION = 1


def save_checkpoint(model: nn.Module, path: str | os.PathLike[str], **meta: Any) -> Path:
    """Write `model`'s state_dict, JSON-safe `meta` and shape manifest to `path` atomically; return the path.

    `arch`, `arch_kwargs` and `input_shape` default to what `build`/`build_from_spec` recorded on the model.
    """
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "state_dict": model.state_dict(),
        "meta": json_safe(default_meta(model, meta), "checkpoint meta"),
        "manifest": make_manifest(model),
    }
    _atomic_save(payload, path)
    return path


_SAVED_FROM = "pass model= with the architecture it was saved from"
"""How to fix a state that does not match the model it is loaded into."""


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: nn.Module | None = None,
    state_dict_model: Callable[[], nn.Module] | None = None,
) -> tuple[nn.Module, dict]:
    """Load a checkpoint (or, with `model=`, a plain state_dict file); return (model in eval mode, meta).

    Parameters
    ----------
    path:
        A .pt file, or `builtin:NAME` for a checkpoint shipped with prunequant (e.g. builtin:fashion-mnist).
    model:
        The skeleton, filled in place; without it, the zoo architecture recorded in the checkpoint is built.
    state_dict_model:
        Builds the skeleton when `path` is a plain state_dict and `model` is not given (a prunequant
        checkpoint still rebuilds its recorded architecture); a state_dict that does not fit it is one
        CheckpointError naming the keys and shapes.

    Returns
    -------
    (model in eval mode, meta). Layers whose shapes pruning changed are first rebuilt from the manifest.
    """
    path = resolve_checkpoint(path)
    payload = _read(path)
    fix = _SAVED_FROM
    if _is_state_dict(payload):
        if model is None and state_dict_model is None:
            raise ModelError(
                f"{path} is a plain state_dict; pass model= (CLI: --model NAME) with its architecture"
            )
        if model is None and state_dict_model is not None:
            model = state_dict_model()
            fix = (
                f"the model is {_described(model)}; give the arch and kwargs the state_dict was saved "
                "from (CLI: --model NAME)"
            )
        state, meta, manifest = payload, {}, {}
    elif isinstance(payload, dict) and payload.get("format") == FORMAT:
        version = payload.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 0 < version <= VERSION:
            raise CheckpointError(
                f"{path} has checkpoint format version {version!r}, newer than or unknown to this "
                f"prunequant (it reads {VERSION}); upgrade prunequant"
            )
        state, meta, manifest = check_payload(path, payload)
    else:
        raise CheckpointError(
            f"{path} is neither a prunequant checkpoint nor a state_dict; save it with save_checkpoint"
        )
    skeleton = model
    probe_shapes(
        path, state, manifest, lambda: build_recorded(path, meta) if skeleton is None else skeleton, fix=fix
    )
    if model is None:
        model = build_recorded(path, meta)
    apply_manifest(model, manifest)
    load_state(model, state, path, fix=fix)
    return finish_load(model), meta


def probe_shapes(
    path: Path,
    state: dict[str, Any],
    manifest: dict[str, Any],
    build_model: Callable[[], nn.Module],
    *,
    fix: str = _SAVED_FROM,
) -> None:
    """Build the model on the meta device (no memory) and refuse a state it would not fit, before the real
    build: crafted arch_kwargs or manifest configs cannot allocate more than the file holds; `fix` ends
    the error line."""
    try:
        with torch.device("meta"):
            probe = build_model()
            probe = probe if next(probe.parameters(), torch.empty(0)).is_meta else copy.deepcopy(probe)
            probe.to("meta")
            check_build_size(path, _bytes(probe.state_dict()), _bytes(state))
            apply_manifest(probe, manifest)
    except PrunequantError:
        raise
    except Exception:  # noqa: BLE001 - not buildable on the meta device; the real build reports its own errors
        return
    _check_state(probe, state, path, fix=fix)


_POST_LOAD_HOOKS: list[Callable[[nn.Module], object]] = []


def register_post_load_hook(hook: Callable[[nn.Module], object]) -> None:
    """Run `hook(model)` on every loaded model (e.g. to re-link state that is derived, not saved)."""
    _POST_LOAD_HOOKS.append(hook)


def finish_load(model: nn.Module) -> nn.Module:
    """Run the post-load hooks on a freshly loaded model and return it in eval mode."""
    for hook in _POST_LOAD_HOOKS:
        hook(model)
    return model.eval()


def default_meta(model: nn.Module, meta: dict[str, Any]) -> dict[str, Any]:
    """A copy of `meta` with arch / arch_kwargs / input_shape defaulted from the zoo stamp on `model`."""
    meta = dict(meta)
    stamp = getattr(model, ARCH_ATTR, None)
    if stamp is not None and meta.get("arch", stamp["name"]) == stamp["name"]:
        kwargs = stamp["kwargs"]
        meta.setdefault("arch", stamp["name"])
        meta.setdefault("arch_kwargs", kwargs)
        if "in_channels" in kwargs and "input_size" in kwargs:
            meta.setdefault(
                "input_shape", [kwargs["in_channels"], kwargs["input_size"], kwargs["input_size"]]
            )
    return meta


def _atomic_save(payload: dict[str, Any], path: Path) -> None:
    """Serialize `payload` and write it atomically: `path` is either the old or the new file."""
    buffer = io.BytesIO()
    try:
        torch.save(payload, buffer)
        atomic_write(path, buffer.getvalue())
    except OSError as exc:
        raise CheckpointError(
            f"cannot write checkpoint {path} ({exc}); check the folder is writable and has space"
        ) from exc


def _read(path: Path) -> Any:
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file; give the path of a .pt file")
    check_file(path)
    if _is_container(path):
        raise CheckpointError(
            f"{path} is a prunequant compressed container (.pqz), not a .pt checkpoint; "
            "load it with load_compressed or load_quantized (the CLI reads .pqz files itself)"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        found = re.search(r"GLOBAL (\S+)", text)
        if found:
            raise CheckpointError(
                f"{path} holds Python code or objects ({found.group(1)}) and was refused: "
                "prunequant loads only tensors and plain data (weights_only); re-save it as a state_dict"
            ) from None
        detail = text.split("WeightsUnpickler error:", 1)[-1]
        first = next((line.strip() for line in detail.splitlines() if line.strip()), type(exc).__name__)
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({first.split('. ')[0][:120]}); "
            "it may be corrupt or truncated, save it again"
        ) from None


def _is_container(path: Path) -> bool:
    """True for a prunequant .pqz container: a zip whose members are not a torch archive's."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return bool(names) and not any(name.endswith("data.pkl") for name in names)


def _is_state_dict(payload: Any) -> bool:
    return (
        isinstance(payload, dict)
        and "format" not in payload
        and all(isinstance(value, torch.Tensor) for value in payload.values())
    )


def build_recorded(path: Path, meta: dict[str, Any]) -> nn.Module:
    """Build the zoo architecture recorded in `meta`; import-path factories are never run from a file."""
    arch = meta.get("arch")
    if not arch:
        raise ModelError(f"{path} does not record its architecture; pass model= (CLI: --model NAME)")
    if arch not in available_models():
        raise ModelError(
            f"{path} was saved from model '{arch}', which is not in the zoo; "
            f"pass model= with that architecture (CLI: --model {arch})"
        )
    return build(arch, **meta.get("arch_kwargs", {}))


def _bytes(tensors: dict[str, Any]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values() if isinstance(t, torch.Tensor))


def state_problems(model: nn.Module, state: dict[str, Any]) -> list[str]:
    """Missing keys, unexpected keys and shape mismatches of `state` against `model` (first few of each)."""
    expected = model.state_dict()
    problems = [
        _listed("missing", [key for key in expected if key not in state]),
        _listed("unexpected", [key for key in state if key not in expected]),
        _listed(
            "shape mismatch",
            [
                f"{key} {list(state[key].shape)} vs model {list(value.shape)}"
                for key, value in expected.items()
                if key in state and isinstance(value, torch.Tensor) and state[key].shape != value.shape
            ],
        ),
    ]
    return [problem for problem in problems if problem]


def _check_state(model: nn.Module, state: dict[str, Any], path: Path, *, fix: str = _SAVED_FROM) -> None:
    """Refuse a `state` that does not fit `model`: one CheckpointError listing the first keys, then `fix`."""
    problems = state_problems(model, state)
    if problems:
        raise CheckpointError(f"{path} does not match the model ({'; '.join(problems)}); {fix}")


def load_state(model: nn.Module, state: dict[str, Any], path: Path, *, fix: str = _SAVED_FROM) -> None:
    """Load `state` into `model` strictly; a mismatch is one CheckpointError listing the first keys."""
    _check_state(model, state, path, fix=fix)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # e.g. a dtype the parameter cannot take
        first = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"{path} does not fit the model ({first}); save it again") from None


def _described(model: nn.Module) -> str:
    """`name(kwargs)` of a model built by `build`/`build_from_spec`, else its class name."""
    stamp = getattr(model, ARCH_ATTR, None)
    if stamp is None:
        return type(model).__name__
    kwargs = ", ".join(f"{key}={value!r}" for key, value in stamp["kwargs"].items())
    return f"{stamp['name']}({kwargs})"


def _listed(label: str, items: list[str], limit: int = 3) -> str:
    if not items:
        return ""
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return f"{label}: {', '.join(items[:limit])}{more}"
