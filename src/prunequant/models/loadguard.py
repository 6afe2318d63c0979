"""Limits and type checks for checkpoint files, applied before anything is unpickled or allocated.

A crafted file must fail with one clear line, not a traceback or gigabytes of memory: the zip members'
declared sizes are checked before torch.load (zip bombs), and every field of meta, manifest and state is
type-checked after it. Limits can be raised with PRUNEQUANT_MAX_CHECKPOINT_MB for very large models.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from prunequant.errors import CheckpointError

MAX_CHECKPOINT_MB_ENV = "PRUNEQUANT_MAX_CHECKPOINT_MB"
DEFAULT_MAX_MB = 4096
MAX_PICKLE_BYTES = 64 << 20  # the pickled structure (not the tensor data)
MAX_RATIO = 50  # uncompressed / compressed size of any deflated member
MAX_MANIFEST_ENTRIES = 100_000
MAX_CONFIG_CHARS = 64 << 10  # arch_kwargs and each manifest config, as JSON text
MAX_CONFIG_INT = 1 << 24  # any integer in arch_kwargs or a layer config (channels, features, kernel)
MAX_DEPTH = 16


def max_bytes() -> int:
    """The largest checkpoint (file and unpacked) accepted, from $PRUNEQUANT_MAX_CHECKPOINT_MB or 4 GiB."""
    text = os.environ.get(MAX_CHECKPOINT_MB_ENV, "")
    try:
        mb = float(text) if text else DEFAULT_MAX_MB
    except ValueError:
        raise CheckpointError(f"{MAX_CHECKPOINT_MB_ENV}={text!r} is not a number of megabytes") from None
    if not math.isfinite(mb) or mb <= 0:
        raise CheckpointError(f"{MAX_CHECKPOINT_MB_ENV} must be a positive number, got {text!r}")
    return int(mb * (1 << 20))


def check_file(path: Path) -> None:
    """Refuse a checkpoint whose file or declared unpacked size is over the limit, before reading it."""
    limit = max_bytes()
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path} is not a readable checkpoint (empty, 0 bytes); save it again")
    if size > limit:
        raise CheckpointError(_too_big(path, f"the file is {size / 2**20:.0f} MiB", limit))
    if not zipfile.is_zipfile(path):
        return  # torch.load reports a non-torch file as unreadable
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint ({exc}); save it again") from None
    total = 0
    for member in members:
        total += member.file_size
        deflated = member.compress_type != zipfile.ZIP_STORED
        if deflated and member.file_size > MAX_RATIO * max(member.compress_size, 1):
            raise CheckpointError(
                f"{path} member {member.filename} unpacks {member.file_size:,} bytes from "
                f"{member.compress_size:,} (a zip bomb?); refused, save the checkpoint again"
            )
        if member.filename.endswith(".pkl") and member.file_size > MAX_PICKLE_BYTES:
            raise CheckpointError(
                f"{path} member {member.filename} is {member.file_size:,} bytes of pickled structure "
                f"(limit {MAX_PICKLE_BYTES:,}); refused, save it with save_checkpoint"
            )
    if total > limit:
        raise CheckpointError(_too_big(path, f"it unpacks to {total / 2**20:.0f} MiB", limit))


def _too_big(path: Path, what: str, limit: int) -> str:
    return (
        f"{path}: {what}, over the {limit / 2**20:.0f} MiB limit; "
        f"set {MAX_CHECKPOINT_MB_ENV} higher if the model really is that large"
    )


def check_payload(path: Path, payload: dict[str, Any]) -> tuple[dict, dict, dict]:
    """Type-check a prunequant payload; return (state, meta, manifest), or one CheckpointError line."""
    state = payload.get("state_dict")
    meta = payload.get("meta", {})
    manifest = payload.get("manifest", {})
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} has no state_dict (found {type(state).__name__}); save it again")
    check_state(path, state)
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: meta is a {type(meta).__name__}, not a dict; save it again")
    check_meta(path, meta)
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{path}: manifest is a {type(manifest).__name__}, not a dict; save it again")
    check_manifest(path, manifest)
    return state, meta, manifest


def check_state(path: Path, state: dict[Any, Any]) -> None:
    """Every state_dict key is a string and every value a tensor."""
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: state_dict key {key!r} is not a string; save it again")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path}: state_dict entry {key!r} is a {type(value).__name__}, not a tensor; save it again"
            )


_META_TYPES: dict[str, tuple[type, ...]] = {
    "arch": (str,),
    "arch_kwargs": (dict,),
    "dataset": (str,),
    "metrics": (dict,),
    "seed": (int,),
}


def check_meta(path: Path, meta: dict[str, Any]) -> None:
    """meta is plain JSON data; the fields prunequant reads have their types and sizes."""
    _check_plain(path, "meta", meta, 0)
    for key, types in _META_TYPES.items():
        if key in meta and meta[key] is not None and not isinstance(meta[key], types):
            raise CheckpointError(
                f"{path}: meta field {key!r} is a {type(meta[key]).__name__}, expected "
                f"{' or '.join(t.__name__ for t in types)}; save it again"
            )
    if "arch_kwargs" in meta:
        check_config(path, "meta arch_kwargs", meta["arch_kwargs"])
    if meta.get("input_shape") is not None:
        check_input_shape(path, meta["input_shape"])


def check_input_shape(path: Path | str, shape: Any) -> None:
    """A shape is a list of positive ints; several inputs are a list of shapes or a dict name -> shape."""
    shapes = shape.values() if isinstance(shape, dict) else shape if _nested(shape) else [shape]
    for one in shapes:
        if not (
            isinstance(one, list)
            and 0 < len(one) <= 8
            and all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= MAX_CONFIG_INT for d in one)
        ):
            raise CheckpointError(
                f"{path}: meta input_shape {shape!r} is not a list of positive sizes like [3, 32, 32]"
            )


def _nested(shape: Any) -> bool:
    return isinstance(shape, list) and bool(shape) and all(isinstance(one, list) for one in shape)


def check_manifest(path: Path, manifest: dict[Any, Any]) -> None:
    """At most MAX_MANIFEST_ENTRIES entries, each {"type": str, "config": small dict}."""
    if len(manifest) > MAX_MANIFEST_ENTRIES:
        raise CheckpointError(
            f"{path}: manifest has {len(manifest):,} entries (limit {MAX_MANIFEST_ENTRIES:,}); refused"
        )
    for name, entry in manifest.items():
        if not (
            isinstance(name, str)
            and isinstance(entry, dict)
            and isinstance(entry.get("type"), str)
            and isinstance(entry.get("config"), dict)
        ):
            raise CheckpointError(
                f"{path}: manifest entry {str(name)[:80]!r} is malformed (expected a dict with 'type' and "
                "'config'); re-save with save_checkpoint"
            )
        check_config(path, f"manifest entry '{name}' config", entry["config"])


def check_config(path: Path, what: str, config: Any) -> None:
    """A dict with string keys, plain values, short JSON and integers of sane size (e.g. channel counts)."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: {what} is a {type(config).__name__}, not a dict; save it again")
    _check_plain(path, what, config, 0)
    if len(repr(config)) > MAX_CONFIG_CHARS:
        raise CheckpointError(f"{path}: {what} is over {MAX_CONFIG_CHARS:,} characters; refused")
    for value in _leaves(config):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_CONFIG_INT:
            raise CheckpointError(
                f"{path}: {what} holds the size {value:,} (limit {MAX_CONFIG_INT:,}); refused before "
                "allocating it"
            )


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _check_plain(path: Path, what: str, value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CheckpointError(f"{path}: {what} is nested more than {MAX_DEPTH} levels deep; refused")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CheckpointError(f"{path}: {what} has a non-string key {key!r}; save it again")
            _check_plain(path, what, item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_plain(path, what, item, depth + 1)
    elif not (value is None or isinstance(value, (str, int, float, bool))):
        raise CheckpointError(
            f"{path}: {what} holds a {type(value).__name__}; only numbers, strings, lists and dicts are "
            "allowed, save it again"
        )


def check_build_size(path: Path, build_bytes: int, state_bytes: int) -> None:
    """Refuse recorded arch_kwargs whose model would be far larger than the weights the file holds.

    A pruned model is smaller than its architecture, so up to 16x the file's weights (at least 256 MiB)
    is allowed; beyond that the kwargs are crafted or wrong.
    """
    allowed = min(max(16 * state_bytes, 256 << 20), max_bytes())
    if build_bytes > allowed:
        raise CheckpointError(
            f"{path}: building its recorded architecture would allocate {build_bytes / 2**20:,.0f} MiB for "
            f"{state_bytes / 2**20:,.1f} MiB of weights; refused (check meta arch_kwargs, or set "
            f"{MAX_CHECKPOINT_MB_ENV})"
        )
