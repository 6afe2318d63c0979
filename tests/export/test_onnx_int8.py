"""int8 export with OUR qparams: int8 weights + QDQ at our quantizers, fused by onnxruntime; parity >= 99%."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from prunequant.errors import ExportError
from prunequant.export.coverage import FLOAT_LAYERS_KEY, INT8_LAYERS_KEY
from prunequant.export.onnx_fp32 import precision_of
from prunequant.export.onnx_int8 import NOT_QUANTIZED, WEIGHT_DTYPE_KEY, _int8_weight, export_int8
from prunequant.export.parity import parity
from prunequant.export.pool_qdq import POOLS
from prunequant.export.runtime import OnnxRunner
from prunequant.models import build
from prunequant.quantization import QuantConfig, activation_quantizers, quantize, quantized_layers

from .conftest import SAMPLE_SHAPE, settle_batchnorm

EXAMPLE = torch.randn(1, 1, 8, 8)


@pytest.fixture(scope="module")
def int8_file(quantized_tiny, tmp_path_factory):
    return export_int8(quantized_tiny, tmp_path_factory.mktemp("int8") / "tiny.int8.onnx", EXAMPLE)


def test_parity_with_the_fake_quant_model_is_at_least_99_percent(quantized_tiny, int8_file, blob_data):
    report = parity(quantized_tiny, int8_file.output, blob_data.test, threads=1)
    assert report.n == 384
    assert report.agreement == 1.0 and report.accuracy_diff == 0.0 and report.top1_torch > 0.7
    # the eval-mode bias is on the exported int32 grid: only float rounding order differs
    assert report.max_abs_logit_diff < 1e-5 and report.mean_abs_logit_diff < 1e-6


def activation_qparams(path: str) -> list[tuple[float, int, np.dtype]]:
    """Sorted (scale, zero point, dtype) of every QuantizeLinear in the ONNX file, except those right after
    an average pool (they repeat the grid of the Q after the Flatten: pool_qdq.py)."""
    graph = onnx.load(path).graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    pooled = {output for n in graph.node if n.op_type in POOLS for output in n.output}
    return sorted(
        (float(constants[n.input[1]]), int(constants[n.input[2]]), constants[n.input[2]].dtype)
        for n in graph.node
        if n.op_type == "QuantizeLinear" and n.input[0] not in pooled
    )


def our_qparams(qmodel) -> list[tuple[float, int, np.dtype]]:
    """Sorted (scale, zero point, uint8) of every activation quantizer of `qmodel`."""
    return sorted(
        (float(np.float32(q.scale)), int(q.zero_point), np.dtype(np.uint8))
        for q in activation_quantizers(qmodel)
    )


def test_activation_qdq_carry_our_scales_and_zero_points(quantized_tiny, int8_file):
    ours = our_qparams(quantized_tiny)
    assert len(ours) == 8  # the model input + 6 ReLUs + the pooled features classifier.0 reads
    assert activation_qparams(int8_file.output) == ours
    assert int8_file.precision == "int8" == precision_of(onnx.load(int8_file.output))


@pytest.mark.parametrize(("weight_dtype", "zero_point"), [("uint8", 128), ("int8", 0)])
def test_weights_are_8_bit_codes_of_our_quantizer_with_per_channel_dequantize(
    quantized_tiny, tmp_path, weight_dtype, zero_point
):
    path = export_int8(quantized_tiny, tmp_path / "w.onnx", EXAMPLE, weight_dtype=weight_dtype).output
    proto = onnx.load(path)
    assert {p.key: p.value for p in proto.metadata_props}[WEIGHT_DTYPE_KEY] == weight_dtype
    constants = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    producers = {out: node for node in proto.graph.node for out in node.output}
    layers = dict(quantized_layers(quantized_tiny))
    weighted = [n for n in proto.graph.node if n.op_type in ("Conv", "Gemm")]
    assert len(weighted) == len(layers) == 7
    for node in weighted:
        dq = producers[node.input[1]]
        assert dq.op_type == "DequantizeLinear" and onnx.helper.get_attribute_value(dq.attribute[0]) == 0
        stored, scale, zero = (constants[name] for name in dq.input)
        assert stored.dtype == np.dtype(weight_dtype) and (zero == zero_point).all()
        assert scale.shape == zero.shape == (stored.shape[0],) and (scale > 0).all()
        codes = stored.astype(np.int64) - zero_point
        layer = layers[dq.input[0].removesuffix(".weight")]
        ours = layer.weight_quantizer.codes(layer.masked_weight()).numpy()
        assert np.array_equal(np.abs(codes), np.abs(ours))  # a folded BN may flip a channel's sign


def test_int8_weights_saturate_on_cpus_without_vnni_and_uint8_weights_do_not(quantized_tiny, tmp_path):
    """The default (auto) storage is exact on every CPU; int8 is exact only where u8s8 does not saturate."""
    batch = torch.randn(64, *SAMPLE_SHAPE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = quantized_tiny.eval()(batch)
    exact = export_int8(quantized_tiny, tmp_path / "u8.onnx", EXAMPLE).output
    assert (OnnxRunner(exact, threads=1)(batch) - reference).abs().max() < 1e-5
    signed = export_int8(quantized_tiny, tmp_path / "s8.onnx", EXAMPLE, weight_dtype="int8").output
    error = (OnnxRunner(signed, threads=1)(batch) - reference).abs().max().item()
    assert error < 1e-5 or not _has_vnni()  # AVX2-only x86 (this machine): pairs saturate at int16


def _has_vnni() -> bool:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return platform.machine() not in ("x86_64", "AMD64") or "vnni" in flags


def test_onnxruntime_fuses_our_graph_into_integer_kernels(int8_file):
    ops = OnnxRunner(int8_file.output, threads=1).optimized_ops()
    assert ops["QLinearConv"] == 5  # every conv
    assert ops["QGemm"] == 2  # both classifier layers: one reads the quantized pooling, one a ReLU
    assert ops["Conv"] == ops["FusedConv"] == 0


def test_resnet20_runs_every_conv_and_residual_add_as_integer_kernels(blob_data, tmp_path):
    torch.manual_seed(0)  # the random init must not depend on which tests ran before
    model = settle_batchnorm(build("resnet20", num_classes=4, in_channels=1, input_size=8), SAMPLE_SHAPE)
    qmodel = quantize(model, QuantConfig(w_bits=8, a_bits=8), blob_data.train, calib_batches=2)
    result = export_int8(qmodel, tmp_path / "resnet20.int8.onnx", EXAMPLE)
    ops = OnnxRunner(result.output, threads=1).optimized_ops()
    assert ops["Conv"] + ops["FusedConv"] == 0
    assert (ops["QLinearConv"], ops["QLinearAdd"], ops["QGemm"]) == (21, 9, 1)
    assert activation_qparams(result.output) == our_qparams(qmodel)  # 32 Q/DQ pairs at our quantizers
    report = parity(qmodel, result.output, blob_data.test, threads=1)
    assert report.agreement >= 0.99 and report.mean_abs_logit_diff < 0.01
    relu_only = quantize(model, QuantConfig(quantize_residuals=False), blob_data.train, calib_batches=2)
    result = export_int8(relu_only, tmp_path / "resnet20.relu-only.onnx", EXAMPLE)
    ops = OnnxRunner(result.output, threads=1).optimized_ops()
    assert ops["Conv"] + ops["FusedConv"] == 11  # each bn2 / shortcut conv lacks a Q on its output


def test_resnet56_fake_quant_agrees_with_onnxruntime_int8(blob_data, tmp_path):
    torch.manual_seed(0)  # the random init must not depend on which tests ran before
    model = settle_batchnorm(build("resnet56", num_classes=4, in_channels=1, input_size=8), SAMPLE_SHAPE)
    # calibrated on the unshuffled split: the shuffled one's batches depend on which tests ran before
    qmodel = quantize(model, QuantConfig(w_bits=8, a_bits=8), blob_data.val, calib_batches=2)
    result = export_int8(qmodel, tmp_path / "resnet56.int8.onnx", EXAMPLE)
    report = parity(qmodel, result.output, blob_data.test, threads=1)
    assert report.agreement >= 0.99 and report.mean_abs_logit_diff < 0.01  # float bias: 0.90 and 0.17


def test_output_quantizers_of_convs_without_batchnorm_become_qdq(blob_data, tmp_path):
    model = settle_batchnorm(
        build("densenet", num_classes=4, in_channels=1, input_size=8, depth=10), SAMPLE_SHAPE
    )
    qmodel = quantize(model, QuantConfig(w_bits=8, a_bits=8), blob_data.train, calib_batches=2)
    ends = [name for name, layer in quantized_layers(qmodel) if layer.output_quantizer is not None]
    assert ends == [
        "conv1",
        "block1.0.conv2",
        "trans1.conv",
        "block2.0.conv2",
        "trans2.conv",
        "block3.0.conv2",
    ]
    result = export_int8(qmodel, tmp_path / "densenet.int8.onnx", EXAMPLE)
    ops = OnnxRunner(result.output, threads=1).optimized_ops()
    assert (ops["QLinearConv"], ops["Conv"] + ops["FusedConv"]) == (9, 0)
    assert activation_qparams(result.output) == our_qparams(qmodel)
    assert parity(qmodel, result.output, blob_data.test, threads=1).mean_abs_logit_diff < 0.02


def test_float_model_is_refused_with_the_fix_in_the_message(trained_tiny, tmp_path):
    with pytest.raises(ExportError) as caught:
        export_int8(trained_tiny, tmp_path / "x.onnx", EXAMPLE)
    assert str(caught.value) == NOT_QUANTIZED
    assert "prunequant quantize" in NOT_QUANTIZED and "--int8-method ort" in NOT_QUANTIZED


def test_uncalibrated_model_is_refused(trained_tiny, tmp_path):
    with pytest.raises(ExportError, match="no range yet"):
        export_int8(quantize(trained_tiny, QuantConfig()), tmp_path / "x.onnx", EXAMPLE)


@pytest.fixture(scope="module")
def four_bit(trained_tiny, blob_data):
    return quantize(trained_tiny, QuantConfig(w_bits=4, a_bits=4), blob_data.train, calib_batches=4)


def test_four_bits_run_as_exact_dequantized_float(four_bit, blob_data, tmp_path):
    result = export_int8(four_bit, tmp_path / "w4a4.onnx", EXAMPLE)
    assert result.precision == "float-dequantized(4-bit)"
    graph = onnx.load(result.output).graph
    assert not {"QuantizeLinear", "DequantizeLinear"} & {n.op_type for n in graph.node}
    report = parity(four_bit, result.output, blob_data.test, threads=1)
    assert report.agreement == 1.0 and report.max_abs_logit_diff < 1e-4


def test_four_bits_clamped_to_int8_warn_and_say_int8(four_bit, blob_data, tmp_path):
    with pytest.warns(UserWarning, match=r"bit widths \[4\] are clamped to int8"):
        result = export_int8(
            four_bit, tmp_path / "w4a4.int8.onnx", EXAMPLE, other_bits="int8", weight_dtype="uint8"
        )
    assert result.precision == "int8"
    graph = onnx.load(result.output).graph
    weights = [t for t in graph.initializer if t.name.endswith(".weight")]
    codes = [numpy_helper.to_array(t).astype(int) - 128 for t in weights]
    assert codes and max(np.abs(c).max() for c in codes) <= 7  # 4-bit weight codes, exact in 8 bits
    assert parity(four_bit, result.output, blob_data.test, threads=1).agreement >= 0.9


def test_weight_only_quantization_is_labelled_float(trained_tiny, tmp_path):
    weights_only = quantize(trained_tiny, QuantConfig(w_bits=8, a_bits=None))
    result = export_int8(weights_only, tmp_path / "w8.onnx", EXAMPLE)
    assert result.precision == "float-dequantized(8-bit weights)"


def test_ort_method_calibrates_a_float_model(trained_tiny, blob_data, tmp_path):
    with pytest.raises(ExportError, match="pass calib_loader"):
        export_int8(trained_tiny, tmp_path / "x.onnx", EXAMPLE, method="ort")
    result = export_int8(
        trained_tiny, tmp_path / "ort.onnx", EXAMPLE, method="ort", calib_loader=blob_data.train
    )
    assert (result.method, result.precision) == ("ort", "int8")
    assert OnnxRunner(result.output, threads=1).optimized_ops()["QLinearConv"] == 5
    assert parity(trained_tiny, result.output, blob_data.test, threads=1).agreement >= 0.95


def test_int8_weight_fits_scales_through_a_folded_batchnorm():
    codes = np.array([[3, -1], [0, 0], [127, 5]], dtype=np.int64)
    gains = np.array([0.02, 0.5, -0.001])  # quantizer scale x BN factor; the last BN gamma is negative
    weight = (codes * gains[:, None]).astype(np.float32)
    int8, scale = _int8_weight(weight, codes, "conv")
    assert int8.tolist() == [[3, -1], [0, 0], [-127, -5]]
    assert np.allclose(scale, [0.02, 1.0, 0.001])
    with pytest.raises(ExportError, match="weight of conv is not its quantizer's codes"):
        _int8_weight(weight + np.float32(0.003), codes, "conv")
    unrounded, scale = _int8_weight(np.array([[0.5, -1.0]], np.float32), None, "fc")
    assert unrounded.tolist() == [[64, -127]] and np.allclose(scale, [1 / 127])


def test_excluded_layers_stay_float(trained_tiny, blob_data, tmp_path):
    config = QuantConfig(exclude=("classifier.3",))
    qmodel = quantize(trained_tiny, config, blob_data.train, calib_batches=2)
    result = export_int8(qmodel, tmp_path / "mixed.onnx", EXAMPLE, weight_dtype="uint8")
    graph = onnx.load(result.output).graph
    weights = {t.name: t.data_type for t in graph.initializer}
    assert weights["classifier.3.weight"] == onnx.TensorProto.FLOAT
    assert weights["classifier.0.weight"] == onnx.TensorProto.UINT8
    assert parity(qmodel, result.output, blob_data.test, threads=1).agreement >= 0.99


def test_a_fully_integer_file_says_so_in_its_result_and_metadata(int8_file):
    props = {p.key: p.value for p in onnx.load(int8_file.output).metadata_props}
    assert int8_file.layers == props[INT8_LAYERS_KEY] == "int8: all 7 layers"
    assert int8_file.float_layers == {} and json.loads(props[FLOAT_LAYERS_KEY]) == {}


def test_a_mixed_file_names_each_float_layer_and_its_reason(trained_tiny, blob_data, tmp_path):
    qmodel = quantize(trained_tiny, QuantConfig(exclude=("classifier.3",)), blob_data.train, calib_batches=2)
    with pytest.warns(UserWarning, match="mixed: 6 of 7 layers int8"):
        result = export_int8(qmodel, tmp_path / "mixed.onnx", EXAMPLE)
    props = {p.key: p.value for p in onnx.load(result.output).metadata_props}
    assert result.layers == props[INT8_LAYERS_KEY] == "mixed: 6 of 7 layers int8"
    assert json.loads(props[FLOAT_LAYERS_KEY]) == result.float_layers
    assert list(result.float_layers) == ["classifier.3"]
    assert "not quantized" in result.float_layers["classifier.3"]


def test_a_linear_after_pool_and_flatten_runs_as_an_integer_gemm(blob_data, tmp_path):
    """conv-ReLU-maxpool-Flatten-Linear: the Linear reads the ReLU's quantized values through value-preserving
    ops; a Q/DQ at the same qparams before it lets onnxruntime fuse QGemm (a float Gemm before: 2 of 3)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 10),
        torch.nn.ReLU(),
        torch.nn.Linear(10, 4),
    ).eval()
    qmodel = quantize(model, QuantConfig(), blob_data.train, calib_batches=2)
    result = export_int8(qmodel, tmp_path / "flat.onnx", EXAMPLE)
    ops = OnnxRunner(result.output, threads=1).optimized_ops()
    assert (ops["QLinearConv"], ops["QGemm"], ops["Gemm"]) == (1, 2, 0)
    assert result.layers == "int8: all 3 layers"
    report = parity(qmodel, result.output, blob_data.test, threads=1)
    assert report.agreement == 1.0 and report.max_abs_logit_diff < 1e-5


def test_ort_method_on_a_decoder_leaves_no_temp_files_in_the_working_directory(tmp_path, monkeypatch):
    """onnxruntime's symbolic shape inference fails on a transposed conv with a dynamic batch (then it is
    skipped, with a warning) and writes temp files into the working directory: none may be left there."""
    decoder = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, stride=2, padding=1), torch.nn.ReLU(), torch.nn.ConvTranspose2d(4, 1, 2, 2)
    ).eval()
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    loader = [(torch.randn(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)) for _ in range(2)]
    result = export_int8(decoder, tmp_path / "dec.onnx", EXAMPLE, method="ort", calib_loader=loader)
    assert Path(result.output).stat().st_size > 0
    assert list(work.iterdir()) == []
