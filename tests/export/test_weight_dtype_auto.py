"""weight_dtype="auto": S8 weights on VNNI / non-x86 CPUs, U8 on AVX2-only x86; recorded with its reason."""

from __future__ import annotations

import onnx
import pytest
import torch

from prunequant.errors import ConfigError
from prunequant.export.onnx_int8 import WEIGHT_DTYPE_KEY, WEIGHT_DTYPE_REASON_KEY, export_int8
from prunequant.export.runtime import OnnxRunner
from prunequant.export.weight_dtype import choose_weight_dtype

from .conftest import SAMPLE_SHAPE

AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
AVX512_VNNI = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx512f avx512_vnni\n"
AVX_VNNI = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx_vnni\n"


@pytest.mark.parametrize(
    ("machine", "cpuinfo", "dtype", "said"),
    [
        ("x86_64", AVX2_ONLY, "uint8", "without VNNI"),
        ("x86_64", AVX512_VNNI, "int8", "avx512_vnni"),
        ("x86_64", AVX_VNNI, "int8", "avx_vnni"),
        ("aarch64", "", "int8", "not x86"),
        ("x86_64", "", "uint8", "unknown"),
    ],
)
def test_auto_picks_int8_only_where_u8s8_kernels_are_exact(machine, cpuinfo, dtype, said):
    choice = choose_weight_dtype("auto", machine=machine, cpuinfo=cpuinfo)
    assert choice.dtype == dtype and said in choice.reason


def test_an_explicit_dtype_is_kept_and_says_it_was_asked_for():
    choice = choose_weight_dtype("uint8", machine="x86_64", cpuinfo=AVX512_VNNI)
    assert choice.dtype == "uint8" and "asked" in choice.reason


def test_default_export_records_the_auto_choice_and_matches_fake_quant_exactly(quantized_tiny, tmp_path):
    result = export_int8(quantized_tiny, tmp_path / "auto.onnx", torch.randn(1, *SAMPLE_SHAPE))
    expected = choose_weight_dtype("auto")
    assert (result.weight_dtype, result.weight_dtype_reason) == (expected.dtype, expected.reason)
    assert result.to_dict()["weight_dtype"] == expected.dtype
    meta = {p.key: p.value for p in onnx.load(result.output).metadata_props}
    assert meta[WEIGHT_DTYPE_KEY] == expected.dtype and meta[WEIGHT_DTYPE_REASON_KEY] == expected.reason
    batch = torch.randn(64, *SAMPLE_SHAPE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = quantized_tiny.eval()(batch)
    assert (OnnxRunner(result.output, threads=1)(batch) - reference).abs().max() < 1e-5


def test_an_unknown_weight_dtype_is_refused(quantized_tiny, tmp_path):
    with pytest.raises(ConfigError, match="weight_dtype"):
        export_int8(quantized_tiny, tmp_path / "x.onnx", torch.randn(1, *SAMPLE_SHAPE), weight_dtype="s8")


def test_onnxruntime_calibration_weights_follow_the_cpu(monkeypatch):
    from prunequant.export import ort_quantizer
    from prunequant.export.ort_quantizer import OrtQuantConfig
    from prunequant.export.weight_dtype import WeightDtypeChoice

    for dtype, expected in (("int8", "s8"), ("uint8", "u8")):
        monkeypatch.setattr(
            ort_quantizer, "choose_weight_dtype", lambda _r, d=dtype: WeightDtypeChoice(d, "t")
        )
        assert OrtQuantConfig().weight_type == expected
        assert OrtQuantConfig().label == f"U8{expected.upper()} per-channel"
    assert OrtQuantConfig(weights="u8").weight_type == "u8"
