"""Restricted unpickling for dataset files: plain dicts of bytes, lists and numpy arrays, nothing callable."""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from prunequant.errors import DataError

_SAMPLE = np.zeros(1, dtype=np.uint8)
_RECONSTRUCT = _SAMPLE.__reduce_ex__(2)[0]  # numpy(._core).multiarray._reconstruct, whatever numpy's version
_FROMBUFFER = _SAMPLE.__reduce_ex__(5)[0]  # numpy(._core).numeric._frombuffer (pickle protocol 5)
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how Python 3 writes bytes at pickle protocol 2
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def load_pickle(path: Path) -> Any:
    """Unpickle `path` (encoding='bytes'), allowing only numpy arrays; DataError naming the file otherwise."""
    try:
        with path.open("rb") as handle:
            return _SafeUnpickler(handle, encoding="bytes").load()
    except Exception as exc:  # a corrupt pickle can fail in many ways; all mean the same to the user
        raise DataError(f"{path}: not a plain dataset pickle ({exc}); download it again") from None
