"""Supported-op check: nodes onnxruntime's CPU provider cannot run are named, with their op and opset."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from prunequant.errors import ExportError
from prunequant.export.runtime import OnnxRunner
from prunequant.export.validate import check_supported, session_error, unsupported_nodes


def model_with(node: onnx.NodeProto, opsets: dict[str, int]) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["h"], name="relu"), node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    imports = [helper.make_opsetid(domain, version) for domain, version in opsets.items()]
    return helper.make_model(graph, opset_imports=imports)


def test_supported_graph_has_no_unsupported_nodes():
    model = model_with(helper.make_node("Sigmoid", ["h"], ["y"], name="sig"), {"": 17})
    assert unsupported_nodes(model) == []
    check_supported(model)


def test_unknown_custom_op_is_named_with_its_node():
    model = model_with(
        helper.make_node("Warp", ["h"], ["y"], name="warp_7", domain="acme"), {"": 17, "acme": 1}
    )
    [bad] = unsupported_nodes(model)
    assert (bad.node, bad.op_type, bad.domain, bad.opset) == ("warp_7", "Warp", "acme", 1)
    with pytest.raises(ExportError, match=r"node 'warp_7' uses op acme::Warp \(opset 1\)"):
        check_supported(model)


def test_standard_op_removed_at_the_model_opset_is_reported():
    scatter = helper.make_node("Scatter", ["h", "i", "u"], ["y"], name="old_scatter")  # ai.onnx 9..10 only
    model = model_with(scatter, {"": 17})
    assert [(n.node, n.op_type, n.domain, n.opset) for n in unsupported_nodes(model)] == [
        ("old_scatter", "Scatter", "", 17)
    ]
    with pytest.raises(ExportError, match=r"node 'old_scatter' uses op ai.onnx::Scatter \(opset 17\)"):
        check_supported(model)
    model.graph.node.append(helper.make_node("Warp", ["y"], ["z"], name="w", domain="acme"))
    with pytest.raises(ExportError, match=r"\(\+1 more\); replace that layer"):
        check_supported(model)


def test_runner_refuses_a_file_with_an_unsupported_op(tmp_path):
    path = tmp_path / "custom.onnx"
    onnx.save(
        model_with(helper.make_node("Warp", ["h"], ["y"], name="warp_7", domain="acme"), {"": 17, "acme": 1}),
        path,
    )
    with pytest.raises(ExportError, match="node 'warp_7' uses op acme::Warp"):
        OnnxRunner(path)


def test_session_errors_name_the_op_and_node():
    message = (
        "[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find an implementation for "
        "ConvInteger(10) node with name 'conv_3'"
    )
    err = session_error("m.onnx", RuntimeError(message))
    assert str(err).startswith("m.onnx: node 'conv_3' uses op ConvInteger (opset 10)")
    assert "\n" not in str(session_error("m.onnx", RuntimeError("bad\nthing")))


def test_type_mismatch_found_only_by_the_session_is_reported(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="int_relu")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.UINT16, [2])],
        [helper.make_tensor_value_info("y", TensorProto.UINT16, [2])],
    )
    path = tmp_path / "u16.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    # Relu has CPU kernels, just none for uint16: only creating the session finds that out
    with pytest.raises(ExportError, match="int_relu"):
        OnnxRunner(path)
