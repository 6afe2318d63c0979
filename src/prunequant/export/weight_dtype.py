"""`weight_dtype="auto"`: int8 weights where onnxruntime's U8S8 kernels are exact, uint8 elsewhere.

On x86 without VNNI (AVX2 only) onnxruntime's U8S8 QLinearConv / QGemm multiply with VPMADDUBSW, which
saturates pairs of products at int16 (onnxruntime issue 16105), so weights are stored as uint8 (exact
U8U8 kernels, slower). With AVX512-VNNI or AVX-VNNI, and on non-x86 CPUs (ARM's int8 dot products do
not saturate), the faster S8 weights are exact.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

VNNI_FLAGS = ("avx512_vnni", "avx_vnni")
_X86 = ("x86_64", "amd64", "i386", "i686", "x86")


@dataclass(frozen=True)
class WeightDtypeChoice:
    """The stored weight type ("int8" or "uint8") and why it was chosen."""

    dtype: str
    reason: str


def choose_weight_dtype(
    requested: str, *, machine: str | None = None, cpuinfo: str | None = None
) -> WeightDtypeChoice:
    """Resolve `requested` ("auto", "int8" or "uint8") for this CPU (or the given `machine` / `cpuinfo`).

    Parameters
    ----------
    requested:
        "int8" / "uint8" are kept as asked; "auto" picks from the CPU.
    machine, cpuinfo:
        platform.machine() and the text of /proc/cpuinfo; read from this machine when None.

    Returns
    -------
    WeightDtypeChoice with the dtype and a one-line reason.
    """
    if requested != "auto":
        return WeightDtypeChoice(requested, f"weight_dtype={requested!r} was asked for")
    machine = (machine if machine is not None else platform.machine()).lower()
    if machine not in _X86:
        return WeightDtypeChoice("int8", f"auto: {machine or 'unknown'} CPU is not x86 (S8 kernels exact)")
    flags = cpu_flags(cpuinfo)
    found = [flag for flag in VNNI_FLAGS if flag in flags]
    if found:
        return WeightDtypeChoice("int8", f"auto: x86 CPU with {found[0]} (S8 kernels exact)")
    if not flags:
        return WeightDtypeChoice(
            "uint8", "auto: x86 CPU flags unknown (no /proc/cpuinfo); exact U8U8 kernels"
        )
    return WeightDtypeChoice(
        "uint8", "auto: x86 CPU without VNNI (U8S8 kernels saturate at int16); exact U8U8 kernels"
    )


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags from the `flags` (x86) or `Features` (ARM) line of /proc/cpuinfo (or the
    given text); empty where it cannot be read."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()
