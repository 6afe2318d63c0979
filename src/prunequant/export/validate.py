"""Supported-op check: every node of an ONNX graph must have a kernel in onnxruntime's CPU provider."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import onnx

from prunequant.errors import ExportError

_DEFAULT_DOMAINS = ("", "ai.onnx")
_CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class UnsupportedNode:
    """A node whose op type (at the model's opset for its domain) has no onnxruntime CPU kernel."""

    node: str
    op_type: str
    domain: str
    opset: int

    def describe(self) -> str:
        domain = self.domain or "ai.onnx"
        return f"node '{self.node}' uses op {domain}::{self.op_type} (opset {self.opset})"


@functools.cache
def _cpu_kernels() -> dict[tuple[str, str], list[tuple[int, int]]]:
    """(domain, op_type) -> version ranges of onnxruntime's registered CPU kernels."""
    from onnxruntime.capi import _pybind_state

    kernels: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for kernel in _pybind_state.get_all_opkernel_def():
        if kernel.provider == _CPU:
            kernels.setdefault((kernel.domain, kernel.op_name), []).append(tuple(kernel.version_range))
    return kernels


def unsupported_nodes(model: onnx.ModelProto) -> list[UnsupportedNode]:
    """The nodes of `model`'s main graph that onnxruntime's CPU provider cannot run (empty when all can)."""
    opsets = {
        ("" if entry.domain in _DEFAULT_DOMAINS else entry.domain): entry.version
        for entry in model.opset_import
    }
    local_functions = {(function.domain, function.name) for function in model.functions}
    kernels = _cpu_kernels()
    found = []
    for index, node in enumerate(model.graph.node):
        domain = "" if node.domain in _DEFAULT_DOMAINS else node.domain
        if (node.domain, node.op_type) in local_functions:
            continue
        version = opsets.get(domain, 1)
        ranges = kernels.get((domain, node.op_type), [])
        if not any(low <= version <= high for low, high in ranges) and not _is_function_op(node, version):
            found.append(UnsupportedNode(node.name or f"#{index}", node.op_type, domain, version))
    return found


def _is_function_op(node: onnx.NodeProto, version: int) -> bool:
    """An ONNX op defined as a function of other ops (HardSwish, GELU, ...): onnxruntime runs it inlined."""
    if node.domain not in _DEFAULT_DOMAINS:
        return False
    try:
        schema = onnx.defs.get_schema(node.op_type, version)
    except onnx.defs.SchemaError:
        return False
    return bool(schema.has_function or schema.has_context_dependent_function)


def check_supported(model: onnx.ModelProto | str | os.PathLike[str]) -> None:
    """Raise ExportError naming the first op and node onnxruntime cannot run; pass silently otherwise."""
    proto = model if isinstance(model, onnx.ModelProto) else load_onnx(model)
    bad = unsupported_nodes(proto)
    if bad:
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ExportError(
            f"{bad[0].describe()}, which onnxruntime's CPU provider does not implement{more}; "
            "replace that layer or export with another opset"
        )


def load_onnx(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Read an ONNX file, raising ExportError (one line) when it is missing or not ONNX."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"ONNX file {path} does not exist; check the path")
    try:
        return onnx.load(path)
    except Exception as exc:  # protobuf raises DecodeError, onnx raises its own types
        raise ExportError(
            f"{path} is not a readable ONNX model ({type(exc).__name__}); re-export it"
        ) from None


_NO_KERNEL = re.compile(r"Could not find an implementation for (\S+)\((\d+)\) node with name '([^']*)'")


def session_error(path: str | os.PathLike[str], exc: Exception) -> ExportError:
    """Turn an onnxruntime session-creation error into a one-line ExportError naming the op and node."""
    text = " ".join(str(exc).split())
    match = _NO_KERNEL.search(text)
    if match:
        op_type, version, node = match.groups()
        return ExportError(
            f"{path}: node '{node}' uses op {op_type} (opset {version}), which onnxruntime cannot run "
            "with these input types; replace that layer or export with another opset"
        )
    return ExportError(f"onnxruntime cannot load {path} ({text[:240]}); re-export the model")
