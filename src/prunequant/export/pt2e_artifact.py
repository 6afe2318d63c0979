"""`torch.export` artifacts (.pt2): written atomically, read only when they unpickle nothing but tensors.

`torch.export.load` stores plain tensors as raw bytes, but would unpickle tensor subclasses, custom and
opaque objects, and sample inputs (the latter with a silent fallback to `weights_only=False`). So before
loading, every pickled payload is checked: sample inputs must load with `weights_only=True`, and weights or
constants that need pickle are refused. A file that is not a PT2 archive is refused in one line. torchao
is imported first: it registers the `quantized_decomposed` ops a PT2E graph calls.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import torch

from prunequant.atomic import atomic_path
from prunequant.errors import ExportError
from prunequant.export.pt2e_backend import load_backend

_PICKLED_CONSTANT_PREFIXES = ("custom_obj_", "opaque_obj_")


def save_program(program: torch.export.ExportedProgram, path: str | os.PathLike[str]) -> Path:
    """Write `program` with `torch.export.save`, atomically (the old file or the new one, never partial)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.export.save(program, tmp)
    return path


def load_program(path: str | os.PathLike[str]) -> torch.export.ExportedProgram:
    """The ExportedProgram in `path`, after checking it holds no pickled code (see the module docstring).

    Raises
    ------
    ExportError
        The file is missing, not a PT2 archive, corrupt, or would unpickle something other than tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such .pt2 file")
    load_backend()  # registers the quantized_decomposed ops that PT2E graphs call
    try:
        with zipfile.ZipFile(path) as archive:
            _check_payloads(archive, path)
        return torch.export.load(path)
    except ExportError:
        raise
    except Exception as err:  # torch.export.load raises many types for a damaged file
        raise ExportError(
            f"{path} is not a readable torch.export (.pt2) artifact ({first_line(err)})"
        ) from err


class EagerProgram:
    """A .pt2 artifact's module run in eager torch (reference q/dq arithmetic), called with a task's inputs
    like a model. Not an nn.Module: an exported module refuses `.eval()`, so evaluation leaves it alone."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._module = load_program(self.path).module()

    def __call__(self, *args: object, **kwargs: object) -> object:
        with torch.no_grad():
            return self._module(*args, **kwargs)


def _check_payloads(archive: zipfile.ZipFile, path: Path) -> None:
    names = archive.namelist()
    if not any(name.endswith("archive_format") for name in names):
        raise ExportError(f"{path} is a zip file but not a torch.export (.pt2) archive")
    for name in names:
        if name.endswith("_config.json") and "/data/" in name:
            for key, payload in json.loads(archive.read(name)).get("config", {}).items():
                pickled = payload.get("use_pickle") or str(payload.get("path_name", "")).startswith(
                    _PICKLED_CONSTANT_PREFIXES
                )
                if pickled:
                    raise ExportError(f"{path}: '{key}' is stored with pickle; refusing to load it")
        elif "/sample_inputs/" in name and archive.getinfo(name).file_size:
            try:
                torch.load(io.BytesIO(archive.read(name)), weights_only=True)
            except Exception as err:  # any failure: the payload is not plain tensors
                raise ExportError(
                    f"{path}: its sample inputs are not plain tensors ({first_line(err)}); refusing it"
                ) from err


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when empty), at most 200 characters."""
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]
