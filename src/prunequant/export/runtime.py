"""OnnxRunner: an onnxruntime session that is called like a torch model (inputs in, outputs out)."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import torch

from prunequant.errors import ExportError
from prunequant.export.onnx_fp32 import metadata_of, precision_of
from prunequant.export.validate import check_supported, load_onnx, session_error
from prunequant.tasks.io import Inputs, as_args, describe
from prunequant.timing import ThreadPlan, Timing, measure, plan_threads
from prunequant.validation import check_int_range

_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


class OnnxRunner:
    """Run an ONNX model on onnxruntime's CPU provider with a fixed thread count and full graph
    optimisation, so `prunequant.training.evaluate(runner, loader, task)` scores it like a torch model.

    Called like the torch model: one tensor, several positional tensors (a tuple) or keyword tensors (a
    dict, by input name). Returns one tensor for a one-output graph, else a tuple of every output.
    Without `threads`, prunequant.timing.plan_threads picks them: every core, or 1 on a busy machine
    (`thread_plan` records why). `metadata` holds the file's metadata_props (e.g. int8 layer coverage).
    """

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if threads is None:
            self.thread_plan: ThreadPlan | None = plan_threads(warn=False)  # latency() warns
            threads = self.thread_plan.used
        else:
            self.thread_plan = None
        self.threads = check_int_range("threads", threads, 1, 4096)
        proto = load_onnx(self.path)
        check_supported(proto)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise session_error(self.path, exc) from None
        inputs = self.session.get_inputs()
        self.input_names = [arg.name for arg in inputs]
        self.input_name = self.input_names[0]
        self.input_types = [_NUMPY_TYPES.get(arg.type, np.float32) for arg in inputs]
        self.sample_shapes = [tuple(d if isinstance(d, int) else None for d in a.shape[1:]) for a in inputs]
        self.sample_shape = self.sample_shapes[0]
        self.output_names = [arg.name for arg in self.session.get_outputs()]
        self.precision = precision_of(proto)
        self.metadata = metadata_of(proto)
        self.bytes = self.path.stat().st_size

    def feed(self, inputs: Inputs) -> dict[str, np.ndarray]:
        """The onnxruntime feed for `inputs` (tensor, tuple or dict by input name), as contiguous arrays."""
        if isinstance(inputs, dict):
            missing = [name for name in self.input_names if name not in inputs]
            if missing:
                raise ExportError(
                    f"{self.path.name} needs inputs {', '.join(self.input_names)}; got {describe(inputs)}"
                )
            values = [inputs[name] for name in self.input_names]
        else:
            values = list(as_args(inputs))
        if len(values) != len(self.input_names):
            raise ExportError(
                f"{self.path.name} takes {len(self.input_names)} input(s) ({', '.join(self.input_names)}); "
                f"got {describe(inputs)}"
            )
        return {
            name: np.ascontiguousarray(torch.as_tensor(value).detach().cpu().numpy(), dtype=dtype)
            for name, value, dtype in zip(self.input_names, values, self.input_types, strict=True)
        }

    def __call__(self, *inputs: Inputs, **named: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Outputs for `runner(x)`, `runner(a, b)`, `runner((a, b))` or `runner(**{name: tensor})`."""
        packed: Inputs = named if named else inputs[0] if len(inputs) == 1 else tuple(inputs)
        outputs = tuple(torch.from_numpy(array) for array in self.session.run(None, self.feed(packed)))
        return outputs[0] if len(outputs) == 1 else outputs

    def run_numpy(self, feed: np.ndarray | dict[str, np.ndarray]) -> np.ndarray | list[np.ndarray]:
        """Outputs as NumPy for a float32 array (one-input graphs) or a prepared `feed()` (for timing)."""
        outputs = self.session.run(None, feed if isinstance(feed, dict) else {self.input_name: feed})
        return outputs[0] if len(outputs) == 1 else outputs

    def latency(self, batch: Inputs, *, warmup: int = 3, repeats: int = 20) -> Timing:
        """Wall time of one `batch` (tensor, tuple or dict) through the session, by prunequant.timing:
        median, p10, p90 over `repeats` calls after `warmup` (noisy when spread or load is high)."""
        feed = self.feed(batch)
        plan = plan_threads(self.threads, fallback=False)  # the session's threads are fixed: record
        return measure(lambda: self.run_numpy(feed), rounds=repeats, warmup=warmup, threads=plan)

    def optimized_ops(self) -> Counter[str]:
        """Op types of the graph onnxruntime actually runs (after fusion), e.g. how many QLinearConv."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        with tempfile.TemporaryDirectory(prefix="prunequant-ort-") as scratch:
            options.optimized_model_filepath = str(Path(scratch) / "optimized.onnx")
            ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            return Counter(node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node)

    def __repr__(self) -> str:
        return f"OnnxRunner({str(self.path)!r}, threads={self.threads}, precision={self.precision!r})"
