"""fp32 export: every zoo model matches torch on onnxruntime; dynamic batch; atomic writes; export errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from prunequant.errors import ExportError
from prunequant.export.onnx_fp32 import export_onnx, inline_constants, precision_of
from prunequant.export.runtime import OnnxRunner
from prunequant.models import available_models, build

from .conftest import settle_batchnorm

ZOO_INPUTS = {"lenet5": (1, 28), "mobilenetv2": (3, 16), "vgg11": (3, 32), "vgg16": (3, 32)}


def assert_matches(model: nn.Module, runner: OnnxRunner, batch: torch.Tensor) -> None:
    with torch.no_grad():
        expected = model(batch)
    actual = runner(batch)
    assert actual.shape == expected.shape
    scale = max(1.0, expected.abs().max().item())
    assert (actual - expected).abs().max().item() <= 1e-4 * scale


@pytest.mark.parametrize("name", available_models("classification"))
def test_every_zoo_model_matches_torch_on_onnxruntime(name, tmp_path):
    channels, size = ZOO_INPUTS.get(name, (3, 16))
    model = settle_batchnorm(build(name, in_channels=channels, input_size=size), (channels, size, size))
    path = export_onnx(model, tmp_path / f"{name}.onnx", torch.randn(1, channels, size, size))
    assert_matches(model, OnnxRunner(path, threads=1), torch.randn(3, channels, size, size))


def test_batch_axis_is_dynamic_and_graph_is_labelled(tiny_model, tmp_path):
    tiny_model.eval()
    path = export_onnx(tiny_model, tmp_path / "tiny.onnx", torch.randn(1, 1, 8, 8))
    proto = onnx.load(path)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, 8, 8]
    assert precision_of(proto) == "fp32"
    assert all(
        node.op_type not in ("Constant", "Identity", "BatchNormalization") for node in proto.graph.node
    )
    runner = OnnxRunner(path, threads=1)
    for batch in (1, 5, 64):
        assert_matches(tiny_model, runner, torch.randn(batch, 1, 8, 8))


def test_export_leaves_training_mode_as_it_was(tiny_model, tmp_path):
    tiny_model.train()
    export_onnx(tiny_model, tmp_path / "tiny.onnx", torch.randn(2, 1, 8, 8))
    assert tiny_model.training


def test_dynamo_exporter_gives_the_same_logits(tiny_model, tmp_path):
    path = export_onnx(tiny_model, tmp_path / "tiny.onnx", torch.randn(1, 1, 8, 8), exporter="dynamo")
    assert_matches(tiny_model.eval(), OnnxRunner(path, threads=1), torch.randn(4, 1, 8, 8))


def test_structurally_pruned_model_exports(tmp_path):
    from prunequant.pruning.structured import prune_channels

    model = settle_batchnorm(build("resnet20", input_size=16), (3, 16, 16))
    pruned = prune_channels(model, torch.randn(1, 3, 16, 16), 0.5)
    path = export_onnx(pruned, tmp_path / "pruned.onnx", torch.randn(1, 3, 16, 16))
    proto = onnx.load(path)
    stem = next(t for t in proto.graph.initializer if len(t.dims) == 4)
    assert stem.dims[0] == 8  # 16 channels halved
    assert_matches(pruned, OnnxRunner(path, threads=1), torch.randn(2, 3, 16, 16))


def test_write_is_atomic(tiny_model, tmp_path):
    target = tmp_path / "tiny.onnx"
    target.write_bytes(b"old")

    class Unexportable(nn.Module):
        def forward(self, x):
            return torch.linalg.svd(x.flatten(1)).S

    with pytest.raises(ExportError, match="cannot export Unexportable to ONNX"):
        export_onnx(Unexportable(), target, torch.randn(1, 1, 8, 8), exporter="torchscript")
    assert target.read_bytes() == b"old"
    export_onnx(tiny_model, target, torch.randn(1, 1, 8, 8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]


def test_bad_arguments_are_one_line_errors(tiny_model, tmp_path):
    with pytest.raises(ExportError, match="batched tensor"):
        export_onnx(tiny_model, tmp_path / "x.onnx", torch.randn(8))
    with pytest.raises(ValueError, match="exporter must be one of"):
        export_onnx(tiny_model, tmp_path / "x.onnx", torch.randn(1, 1, 8, 8), exporter="tvm")


def test_inline_constants_turns_shared_identities_into_initializers():
    shared = onnx.numpy_helper.from_array(np.ones(2, np.float32), "shared")
    graph = onnx.helper.make_graph(
        [
            onnx.helper.make_node("Identity", ["shared"], ["b1"]),
            onnx.helper.make_node(
                "Constant", [], ["c"], value=onnx.numpy_helper.from_array(np.zeros(2, np.float32))
            ),
            onnx.helper.make_node("Add", ["x", "b1"], ["y0"]),
            onnx.helper.make_node("Add", ["y0", "c"], ["y"]),
        ],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])],
        [shared],
    )
    inline_constants(graph)
    assert [node.op_type for node in graph.node] == ["Add", "Add"]
    assert sorted(t.name for t in graph.initializer) == ["b1", "c"]


def test_package_names_resolve_lazily():
    import prunequant.export as export

    assert export.export_onnx is export_onnx and export.OnnxRunner is OnnxRunner
    assert set(export.__all__) >= {"export_onnx", "export_int8", "OnnxRunner", "parity", "bench"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        export.nope  # noqa: B018
