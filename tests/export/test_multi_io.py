"""Models with several inputs and outputs, end to end: quantize, calibrate (every input), export fp32 and
int8 with named inputs/outputs and dynamic batch axes, OnnxRunner, parity through a user task, bench."""

from __future__ import annotations

import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunequant.export.bench import bench, onnx_candidate, torch_candidate
from prunequant.export.onnx_fp32 import export_onnx
from prunequant.export.onnx_int8 import export_int8
from prunequant.export.parity import OutputParityReport, parity
from prunequant.export.runtime import OnnxRunner
from prunequant.quantization import QuantConfig, activation_quantizers, calibrate, quantize, quantized_layers
from prunequant.tasks import MetricSpec, OutputComparison, Task, flatten_outputs


class TwoInputFlow(nn.Module):
    """Image + sparse depth -> a dense 2-channel field (a scene-flow stand-in): one conv per input, concat."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.depth = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.head = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))

    def forward(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.image(image), self.depth(depth)], dim=1))


class TwoHeads(nn.Module):
    """One input, a tuple of two outputs (a detector stand-in: a dense map and pooled scores)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.dense = nn.Conv2d(6, 3, 1)
        self.scores = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return self.dense(features), self.scores(features.mean(dim=(2, 3)))


class MeanSquaredTask(Task):
    """A user task: the target is the first output; the metric is its mean squared error (lower is better)."""

    name = "mse-test"
    metrics = (MetricSpec("mse", "", higher_is_better=False, label="MSE"),)
    primary = "mse"

    def loss(self, outputs, target):
        return F.mse_loss(flatten_outputs(outputs)[0], target)

    def metric_state(self):
        return _MeanSquared()

    def comparison(self):
        return OutputComparison()


class _MeanSquared:
    def __init__(self) -> None:
        self.total, self.count = 0.0, 0

    def update(self, outputs, target) -> None:
        error = (flatten_outputs(outputs)[0].float() - target.float()) ** 2
        self.total += error.sum().item()
        self.count += error.numel()

    def compute(self) -> dict[str, float]:
        return {"mse": self.total / max(1, self.count)}


def _settled(model: nn.Module, *inputs: torch.Tensor) -> nn.Module:
    for norm in model.modules():
        if isinstance(norm, nn.BatchNorm2d):
            norm.reset_running_stats()
            norm.momentum = None
    model.train()
    with torch.no_grad():
        model(*inputs)
    return model.eval()


def _flow_batches(count: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        image = torch.randn(16, 1, 8, 8, generator=generator)
        mask = torch.rand(16, 1, 8, 8, generator=generator) > 0.7
        depth = torch.rand(16, 1, 8, 8, generator=generator) * mask
        batches.append((image, 3 * depth, torch.randn(16, 2, 8, 8, generator=generator)))
    return batches


@pytest.fixture(scope="module")
def flow():
    torch.manual_seed(0)
    batches = _flow_batches(4, seed=1)
    model = _settled(TwoInputFlow(), batches[0][0], batches[0][1])
    task = MeanSquaredTask()
    qmodel = quantize(model, QuantConfig(w_bits=8, a_bits=8), batches, calib_batches=3, task=task)
    return model, qmodel, batches, task


def test_every_input_gets_its_own_calibrated_activation_quantizer(flow):
    _, qmodel, batches, task = flow
    layers = dict(quantized_layers(qmodel))
    image_q, depth_q = layers["image.0"].input_quantizer, layers["depth.0"].input_quantizer
    assert image_q is not None and depth_q is not None and image_q.calibrated and depth_q.calibrated
    assert float(depth_q.zero_point) == 0  # the depth input is never negative: its own range, from 0
    assert float(image_q.zero_point) > 50  # the image input is centred: a zero point near the middle
    assert layers["head.0"].input_quantizer is not None  # it reads the concatenation of both branches
    before = [float(q.scale) for q in activation_quantizers(qmodel)]
    calibrate(qmodel, [(b[0], 2 * b[1], b[2]) for b in batches], 2, task=task)
    after = [float(q.scale) for q in activation_quantizers(qmodel)]
    assert float(depth_q.scale) > before[[id(q) for q in activation_quantizers(qmodel)].index(id(depth_q))]
    assert after != before


def test_two_input_model_exports_named_inputs_and_matches_in_fp32_and_int8(flow, tmp_path):
    model, qmodel, batches, task = flow
    example = (batches[0][0][:1], batches[0][1][:1])
    fp32 = export_onnx(model, tmp_path / "flow.onnx", example)
    proto = onnx.load(fp32)
    assert [i.name for i in proto.graph.input] == ["input0", "input1"]
    assert all(i.type.tensor_type.shape.dim[0].dim_param for i in (*proto.graph.input, *proto.graph.output))
    runner = OnnxRunner(fp32, threads=1)
    image, depth, _ = batches[3]
    with torch.no_grad():
        assert (runner(image, depth) - model(image, depth)).abs().max() < 1e-4
        assert (runner((image[:3], depth[:3])) - model(image[:3], depth[:3])).abs().max() < 1e-4
    with pytest.warns(UserWarning, match="mixed: 3 of 4 layers int8"):
        result = export_int8(qmodel, tmp_path / "flow.int8.onnx", example)
    assert list(result.float_layers) == ["head.2"] and "float Conv" in result.float_layers["head.2"]
    ops = OnnxRunner(result.output, threads=1).optimized_ops()
    # the last conv makes the model output, which stays float: QLinearConv needs a quantized output
    assert ops["QLinearConv"] == 3 and ops["Conv"] + ops["FusedConv"] == 1
    report = parity(qmodel, result.output, batches, threads=1, task=task)
    assert isinstance(report, OutputParityReport) and report.n == 64 and report.metric == "mse"
    # integer kernels and torch's float convs round a few values to neighbouring codes
    assert report.max_abs_diff < 0.02 and report.mean_rel_diff < 1e-4 and set(report.outputs) == {"output"}
    assert report.metric_onnx == pytest.approx(report.metric_torch, rel=1e-4)


def test_dict_inputs_are_named_by_their_keys(flow, tmp_path):
    model, _, batches, _ = flow
    example = {"image": batches[0][0][:1], "depth": batches[0][1][:1]}
    runner = OnnxRunner(export_onnx(model, tmp_path / "named.onnx", example), threads=1)
    assert runner.input_names == ["image", "depth"]
    image, depth, _ = batches[1]
    with torch.no_grad():
        assert (runner({"depth": depth, "image": image}) - model(image, depth)).abs().max() < 1e-4


def test_ort_quantizer_calibrates_on_every_input(flow, tmp_path):
    model, _, batches, task = flow
    example = (batches[0][0][:1], batches[0][1][:1])
    result = export_int8(model, tmp_path / "ort.onnx", example, "ort", calib_loader=batches, task=task)
    graph = onnx.load(result.output).graph
    quantized_inputs = {n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    assert {"input0", "input1"} <= quantized_inputs
    report = parity(model, result.output, batches, threads=1, task=task)
    assert report.metric_onnx == pytest.approx(report.metric_torch, rel=0.05)


def test_two_output_model_end_to_end(tmp_path):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(2)
    data = [(torch.randn(16, 1, 8, 8, generator=generator), torch.randn(16, 3, 8, 8, generator=generator))
            for _ in range(3)]
    model = _settled(TwoHeads(), data[0][0])
    task = MeanSquaredTask()
    qmodel = quantize(model, QuantConfig(w_bits=8, a_bits=8), data, calib_batches=2, task=task)
    example = data[0][0][:1]
    fp32 = OnnxRunner(export_onnx(model, tmp_path / "heads.onnx", example), threads=1)
    assert fp32.output_names == ["output0", "output1"]
    dense, scores = fp32(data[1][0])
    assert dense.shape == (16, 3, 8, 8) and scores.shape == (16, 5)
    int8 = export_int8(qmodel, tmp_path / "heads.int8.onnx", example)
    report = parity(qmodel, int8.output, data, threads=1, task=task)
    assert set(report.outputs) == {"output0", "output1"} and report.n == 48
    assert report.max_abs_diff < 1e-4
    rows = bench(
        [torch_candidate("torch", model), onnx_candidate("int8", OnnxRunner(int8.output, threads=1))],
        batches=(2,), threads=1, rounds=1, repeats=1, warmup=0, example=example,
    ).rows
    assert [row.model for row in rows] == ["torch", "int8"] and all(row.median_ms > 0 for row in rows)


def test_bench_takes_a_two_input_example(flow, tmp_path):
    model, _, batches, _ = flow
    example = (batches[0][0][:1], batches[0][1][:1])
    runner = OnnxRunner(export_onnx(model, tmp_path / "flow.onnx", example), threads=1)
    rows = bench([torch_candidate("torch", model), onnx_candidate("onnx", runner)], batches=(1, 4), threads=1,
                 rounds=1, repeats=1, warmup=0, example=example).rows
    assert [(row.model, row.batch) for row in rows] == [("torch", 1), ("onnx", 1), ("torch", 4), ("onnx", 4)]
