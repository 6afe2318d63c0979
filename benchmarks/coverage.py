"""Coverage: does structured pruning reach every layer of each model, and does it pay off?

For every zoo model (3x32x32, random init; plus ResNet-56 with option A zero-pad shortcuts) and, when
torchvision imports, the torchvision models of issue 11 (3x224x224), it prints: the MACs reduction at
amount 0.3 and 0.5 (uniform l1), the conv/linear/norm layers narrowed and left unpruned (skipped_layers),
the speedup of the 0.5 model in torch eager and onnxruntime fp32 (1 thread, batch 1, interleaved rounds,
median), and in the int8 export of the quantized 0.5 model (PTQ, prunequant.export.export_int8) how many
convs/linears onnxruntime runs with integer kernels (QLinearConv, ConvInteger, QLinearMatMul,
MatMulInteger, QGemm) and how many stay float (Conv, Gemm, ...), counted in onnxruntime's own optimised
graph. Target: MACs reduction >= 3.4x at 0.5 on each model. Where Torch-Pruning imports (optional, e.g.
`pip install --target DIR torch-pruning` and DIR on PYTHONPATH), a last column gives its MACs reduction at
0.5 on the same model (MetaPruner, L1 magnitude, uniform, the output layer ignored, as ours), counted by
our profiler, or the error its pruned model raises when run.

    python benchmarks/coverage.py [--quick] [--models resnet20,mobilenetv2] [--vision [--models resnet18]]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from copy import deepcopy
from pathlib import Path

import onnx
import onnxruntime as ort
import torch
from torch import nn

from prunequant.export import export_onnx
from prunequant.export.onnx_int8 import export_int8
from prunequant.models import available_models, build
from prunequant.models.layers import layer_role
from prunequant.profiling import profile
from prunequant.pruning.structured import prune_channels
from prunequant.quantization import QuantConfig, quantize

TORCHVISION = (
    "resnet18", "resnet50", "vgg16_bn", "mobilenet_v2", "mobilenet_v3_small", "densenet121",
    "efficientnet_b0", "shufflenet_v2_x1_0", "regnet_x_400mf", "squeezenet1_1", "googlenet",
)  # fmt: skip
INT8_OPS = {"QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger", "QGemm"}
FLOAT_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "FusedConv", "FusedGemm", "FusedMatMul"}


def macs(model: nn.Module, x: torch.Tensor) -> int:
    return profile(model, x, latency=False).total["macs"]


def torch_pruning_reduction(model: nn.Module, x: torch.Tensor, amount: float) -> str:
    """Torch-Pruning's MACs reduction at `amount` on a copy of `model`, "-" where it is not installed."""
    try:
        import torch_pruning as tp
    except ImportError:
        return "-"
    copy = deepcopy(model).eval()
    layers = [m for m in copy.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importance = tp.importance.MagnitudeImportance(p=1)
            tp.pruner.MetaPruner(
                copy, x, importance=importance, pruning_ratio=amount, ignored_layers=layers[-1:]
            ).step()
            return f"{macs(model, x) / macs(copy.eval(), x):.2f}x"
    except Exception as exc:  # noqa: BLE001 - a broken pruned model is the row's finding
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:50]}"


def pruned(model: nn.Module, x: torch.Tensor, amount: float):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prune_channels(model, x, amount, return_result=True)


def narrowed(result) -> int:
    modules = dict(result.model.named_modules())
    layers = {layer for plan in result.groups if plan.removed for layer in plan.layers}
    return sum(1 for name in layers if layer_role(modules.get(name)) is not None)


def session(path: Path, optimized: Path | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    options.log_severity_level = 3
    if optimized is not None:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def interleaved(calls: list, rounds: int, runs: int) -> list[float]:
    """Median ms per call of each function, timing them in turn (A B A B ...) to share machine noise."""
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(3):  # warm-up (onnxruntime's first runs allocate)
        for call in calls:
            call()
    for _ in range(rounds):
        for index, call in enumerate(calls):
            start = time.perf_counter()
            for _ in range(runs):
                call()
            samples[index].append((time.perf_counter() - start) * 1e3 / runs)
    return [statistics.median(s) for s in samples]


def int8_counts(model: nn.Module, x: torch.Tensor, scratch: Path) -> tuple[int, int, int, dict] | str:
    """(integer conv/linear ops, float conv/linear ops) in onnxruntime's optimised graph of the int8 export,
    the number of other ops the export computes in float (its `float_ops`: a Hardswish, a mean, a pool or
    a concat read by a float norm; a concat of int8 tensors is not one), and its {float layer, norm or op:
    reason}."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calib = [(x.repeat(4, 1, 1, 1) + 0.1 * torch.randn(4, *x.shape[1:]), torch.zeros(4))] * 2
            qmodel = quantize(model, QuantConfig(), calib, calib_batches=2)
            result = export_int8(qmodel.eval(), scratch / "int8.onnx", x)
        session(Path(result.output), scratch / "int8.opt.onnx")
    except Exception as exc:  # noqa: BLE001 - a benchmark row reports the failure instead of stopping
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:60]}"
    ops = [node.op_type for node in onnx.load(str(scratch / "int8.opt.onnx")).graph.node]
    floats = {**result.float_layers, **result.float_norms, **result.float_ops}
    integer, other = sum(op in INT8_OPS for op in ops), sum(op in FLOAT_OPS for op in ops)
    return integer, other, len(result.float_ops), floats


def row(name: str, model: nn.Module, x: torch.Tensor, rounds: int, runs: int) -> dict:
    model.eval()
    base = macs(model, x)
    results = {amount: pruned(model, x, amount) for amount in (0.3, 0.5)}
    half = results[0.5].model.eval()
    with tempfile.TemporaryDirectory(prefix="coverage-") as scratch:
        scratch = Path(scratch)
        export_onnx(model, scratch / "base.onnx", x)
        export_onnx(half, scratch / "half.onnx", x)
        feed = {"input": x.numpy()}
        sessions = [session(scratch / "base.onnx"), session(scratch / "half.onnx")]
        torch.set_num_threads(1)
        with torch.inference_mode():
            eager = interleaved([lambda: model(x), lambda: half(x)], rounds, runs)
        onnx_ms = interleaved([lambda s=s: s.run(None, feed) for s in sessions], rounds, runs)
        counts = int8_counts(half, x, scratch)
    return {
        "model": name,
        "x0.3": base / macs(results[0.3].model, x),
        "x0.5": base / macs(half, x),
        "narrowed": narrowed(results[0.5]),
        "skipped": len(results[0.5].skipped_layers),
        "eager": eager[0] / eager[1],
        "onnx": onnx_ms[0] / onnx_ms[1],
        "int8": counts,
        "torch-pruning": torch_pruning_reduction(model, x, 0.5),
    }


def print_table(rows: list[dict]) -> None:
    header = f"{'model':<22}{'MACs x0.3':>10}{'MACs x0.5':>10}{'narrowed':>9}{'skipped':>8}"
    print(
        header
        + f"{'eager x':>8}{'ort x':>7}  int8 export (0.5): convs+linears int8 / float; other float ops"
    )
    floats = {}
    for r in rows:
        counts = r["int8"]
        int8 = (
            counts
            if isinstance(counts, str)
            else f"{counts[0]} int8 / {counts[1]} float; {counts[2]} float ops"
        )
        if not isinstance(counts, str) and counts[3]:
            floats[r["model"]] = counts[3]
        target = "" if r["x0.5"] >= 3.4 else "  (< 3.4x target)"
        print(
            f"{r['model']:<22}{r['x0.3']:>9.2f}x{r['x0.5']:>9.2f}x{r['narrowed']:>9}{r['skipped']:>8}"
            f"{r['eager']:>7.2f}x{r['onnx']:>6.2f}x  {int8}{target}  Torch-Pruning x0.5: {r['torch-pruning']}"
        )
    for model, layers in floats.items():
        named = "; ".join(f"{name}: {reason}" for name, reason in layers.items())
        print(f"  {model} float layers, norms and ops ({len(layers)}): {named}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timing rounds")
    parser.add_argument("--models", default="", help="comma-separated subset of the zoo (or of torchvision)")
    parser.add_argument("--vision", action="store_true", help="only the torchvision rows (random weights)")
    args = parser.parse_args()
    rounds, runs = (5, 5) if args.quick else (15, 20)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    if args.vision:
        vision_rows([n for n in args.models.split(",") if n] or list(TORCHVISION), rounds, runs)
        return
    names = [n for n in args.models.split(",") if n] or [
        *available_models(task="classification"),
        "resnet56-A",
    ]
    rows = []
    for name in names:
        size = 28 if name == "lenet5" else 32
        channels = 1 if name == "lenet5" else 3
        zoo, _, shortcut = name.partition("-")  # "resnet56-A": zero-padded (option A) shortcuts
        options = {"shortcut": shortcut} if shortcut else {}
        model = build(zoo, num_classes=10, in_channels=channels, input_size=size, **options)
        rows.append(row(name, model, torch.randn(1, channels, size, size), rounds, runs))
        print(f"done: {name}", flush=True)
    print_table(rows)
    vision_rows(list(TORCHVISION), rounds, runs)


def vision_rows(names: list[str], rounds: int, runs: int) -> None:
    """The torchvision rows (3x224x224, `weights=None`: random init, nothing downloaded)."""
    try:
        from torchvision import models as tv
    except ImportError:
        print("torchvision models skipped: `import torchvision` fails here (install the `vision` extra)")
        return
    x = torch.randn(1, 3, 224, 224)
    rows = []
    for name in names:
        options = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
        rows.append(row(name, getattr(tv, name)(weights=None, **options), x, rounds, runs))
        print(f"done: {name}", flush=True)
    print_table(rows)


if __name__ == "__main__":
    main()
