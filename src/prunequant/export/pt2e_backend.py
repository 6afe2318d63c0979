"""The PT2E toolkit, from torchao: torch 2.13 no longer ships `torch.ao.quantization.quantize_pt2e`.

Importing `torchao.quantization.pt2e.quantizer.x86_inductor_quantizer` also registers inductor's int8
lowering passes (weight prepack, qconv / qlinear fusion), so every process that compiles a PT2E model
imports it through `load_backend()` first. torchao's import-time log lines about its CUDA-only kernels
(mxfp8, cutlass) and a torch pytree deprecation are muted for the duration of the import: they concern
code this CPU path never runs.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

from prunequant.errors import ExportError
from prunequant.export.weight_dtype import cpu_flags

INSTALL_HINT = "the torch-native int8 path needs torchao: pip install 'prunequant[native]'"
_VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
_NOISY_LOGGERS = ("torchao", "torch.utils._pytree")


@dataclass(frozen=True)
class Pt2eBackend:
    """The torchao entry points the PT2E path calls; `make_quantizer()` gives a fresh configured quantizer."""

    prepare_pt2e: Any
    convert_pt2e: Any
    make_quantizer: Any
    version: str
    reduce_range: bool

    def describe(self) -> str:
        """The quantizer configuration, as recorded in every result."""
        activations = "0..127 (reduce_range: x86 without VNNI)" if self.reduce_range else "0..255"
        return (
            f"torchao {self.version} X86InductorQuantizer, global "
            "get_default_x86_inductor_quantization_config(is_qat=False, is_dynamic=False, "
            f"reduce_range={self.reduce_range}): static uint8 per-tensor activations {activations} "
            "(histogram observer), int8 symmetric per-channel weights (min/max)"
        )


@functools.lru_cache(maxsize=1)
def load_backend() -> Pt2eBackend:
    """torchao's prepare / convert and a configured X86InductorQuantizer (raises ExportError without it).

    Returns
    -------
    Pt2eBackend
        Its quantizers are static, per-channel (see QUANTIZER); inductor's int8 passes are registered.
    """
    levels = {name: logging.getLogger(name).level for name in _NOISY_LOGGERS}
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import torchao
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as x86
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError as err:
        raise ExportError(f"{INSTALL_HINT} ({err})") from err
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)

    reduce_range = _lacks_vnni()

    def make_quantizer() -> Any:
        config = x86.get_default_x86_inductor_quantization_config(
            is_qat=False, is_dynamic=False, reduce_range=reduce_range
        )
        return x86.X86InductorQuantizer().set_global(config)

    return Pt2eBackend(prepare_pt2e, convert_pt2e, make_quantizer, torchao.__version__, reduce_range)


def _lacks_vnni() -> bool:
    """An x86 CPU with AVX2 but no VNNI: its u8s8 kernels saturate int16 pairs, so activations use 7 bits
    (torchao's advice for `reduce_range`). False where /proc/cpuinfo cannot be read or on other CPUs."""
    flags = cpu_flags()
    return "avx2" in flags and not flags.intersection(_VNNI_FLAGS)


def available() -> bool:
    """Whether torchao's PT2E toolkit imports here."""
    try:
        load_backend()
    except ExportError:
        return False
    return True
