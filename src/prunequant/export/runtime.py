"""OnnxRunner: an onnxruntime session that is called like a torch model (batch in, logits tensor out)."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import torch

from prunequant.errors import ExportError
from prunequant.export.onnx_fp32 import precision_of
from prunequant.export.validate import check_supported, load_onnx, session_error
from prunequant.profiling import LatencyStats, measure_latency
from prunequant.validation import check_int_range


class OnnxRunner:
    """Run an ONNX classifier on onnxruntime's CPU provider with a fixed thread count and full graph
    optimisation, so `prunequant.training.evaluate(runner, loader)` scores it like a torch model."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.threads = check_int_range("threads", threads or os.cpu_count() or 1, 1, 4096)
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
        if len(inputs) != 1:
            raise ExportError(f"{self.path} has {len(inputs)} inputs; OnnxRunner runs one-input classifiers")
        self.input_name = inputs[0].name
        self.sample_shape = tuple(d if isinstance(d, int) else None for d in inputs[0].shape[1:])
        self.precision = precision_of(proto)
        self.bytes = self.path.stat().st_size

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits for a float batch (any torch tensor or array of the model's input shape)."""
        array = np.ascontiguousarray(torch.as_tensor(batch).detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])

    def run_numpy(self, array: np.ndarray) -> np.ndarray:
        """Logits as a NumPy array for a float32 NumPy batch: no torch conversion (for timing)."""
        return self.session.run(None, {self.input_name: array})[0]

    def latency(self, batch: torch.Tensor, *, warmup: int = 3, repeats: int = 20) -> LatencyStats:
        """Median / p90 wall time of one `batch` through the session."""
        array = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        return measure_latency(lambda: self.run_numpy(array), warmup=warmup, repeats=repeats)

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
