"""Time a PT2E artifact compiled with inductor, and check its parity, in a fresh process per artifact.

The child (pt2e_child `measure`) loads the .pt2, compiles it with freezing, and times it interleaved
against the float baseline in torch eager at each batch size, 1 thread by default. The baseline travels
as a prunequant checkpoint when it is a zoo model (the child runs that module, exactly as eager PyTorch
would), else as its `torch.export` program run eagerly: `baseline` in the result says which (the program
form ran 4-13% slower than the module on ResNet-20 here, so speedups against it are overstated by that).
Parity: the child runs the compiled model on the given input batches and the parent compares its outputs
with `reference` by the task's comparison.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunequant.errors import ExportError
from prunequant.export.pt2e_artifact import save_program
from prunequant.export.pt2e_int8 import RUNTIME, export_program, export_spec
from prunequant.models.registry import ARCH_ATTR
from prunequant.tasks import Inputs, Task, default_task, run_model
from prunequant.validation import check_int_range

BASELINE_MODULE = "float model, eager torch (nn.Module from a prunequant checkpoint)"
BASELINE_PROGRAM = "float model, eager torch (its torch.export program: up to 13% slower than the module)"


@dataclass(frozen=True)
class BatchTiming:
    """One batch size: medians (ms), the per-round speedup baseline / candidate (median, p10, p90), the
    seconds of the first call (compilation included) and the int8 layers lowered to int8 kernels."""

    batch: int
    int8_kernels: int
    baseline_ms: float
    candidate_ms: float
    speedup: float
    speedup_p10: float
    speedup_p90: float
    compile_s: float


@dataclass(frozen=True)
class Pt2eRun:
    """Timings, lowering and parity of one compiled artifact, and the conditions they were measured under."""

    artifact: str
    runtime: str
    threads: int
    rounds: int
    repeats: int
    baseline: str
    timings: list[BatchTiming]
    int8_layers: int
    notes: list[str] = field(default_factory=list)
    parity: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_pt2e(
    artifact: str | os.PathLike[str],
    baseline: nn.Module | None,
    example: Inputs,
    *,
    batches: Sequence[int] = (1, 64),
    threads: int = 1,
    rounds: int = 7,
    repeats: int = 5,
    warmup: int = 3,
    seed: int = 0,
    parity_loader: Iterable | None = None,
    parity_batches: int = 0,
    reference: nn.Module | None = None,
    task: Task | None = None,
    timeout_s: float = 3600,
) -> Pt2eRun:
    """Compile and time `artifact` in a fresh process; with `parity_loader`, compare it to `reference`.

    Parameters
    ----------
    baseline:
        The float model the speedups are against, run in eager torch (None: no timing; `batches` ignored).
    example:
        Inputs (tensor, tuple or dict, batch first) whose shapes and dtypes the timed batches copy.
    parity_loader:
        Batches that `task` splits into inputs and target; `parity_batches` of them (0: all) are run by the
        compiled model and compared with `reference` (our fake-quant or float model) by `task.comparison()`.

    Returns
    -------
    Pt2eRun
        Per batch size: baseline and compiled medians, the speedup with its p10-p90 spread and how many
        int8 layers inductor lowered to int8 kernels (`notes` names shortfalls); the comparison (`parity`).
    """
    batches = list(batches) if baseline is not None else []
    for name, value in (("threads", threads), ("rounds", rounds), ("repeats", repeats)):
        check_int_range(name, value, 1, 100_000)
    for batch in batches:
        check_int_range("batch size", batch, 1, 1_000_000)
    if not Path(artifact).is_file():
        raise ExportError(f"{artifact}: no such .pt2 file")
    if parity_loader is not None and reference is None:
        raise ExportError("parity needs the reference model (our fake-quant or float model)")
    task = task or default_task()
    with tempfile.TemporaryDirectory(prefix="pq-pt2e-") as scratch:
        folder = Path(scratch)
        torch.save(example, folder / "example.pt")
        pairs = _parity_pairs(parity_loader, parity_batches, task) if parity_loader is not None else []
        if pairs:
            torch.save([inputs for inputs, _ in pairs], folder / "parity_inputs.pt")
        spec = _write_baseline(baseline, example, folder) if baseline is not None else {"kind": "none"}
        request = {
            "artifact": str(Path(artifact).resolve()),
            "baseline": spec,
            "batches": batches,
            "threads": threads,
            "rounds": rounds,
            "repeats": repeats,
            "warmup": warmup,
            "seed": seed,
            "parity": bool(pairs),
        }
        result = _run_child(folder, request, timeout_s)
        parity = _compare(pairs, folder, reference, task) if pairs else None
    return Pt2eRun(
        str(artifact),
        RUNTIME,
        threads,
        rounds,
        repeats,
        spec.get("description", "none (not timed)"),
        [BatchTiming(**timing) for timing in result["timings"]],
        result["int8_layers"],
        result["notes"],
        parity,
    )


def child_env() -> dict[str, str]:
    """This process's environment, with this prunequant's source folder first on PYTHONPATH, so that a
    child process imports the same code (and inherits the malloc settings bench relies on)."""
    import prunequant

    source = str(Path(prunequant.__file__).resolve().parents[1])
    paths = [source, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def _parity_pairs(loader: Iterable, limit: int, task: Task) -> list[tuple[Inputs, Any]]:
    return [task.split(batch) for batch in (islice(loader, limit) if limit else loader)]


def _write_baseline(model: nn.Module, example: Inputs, folder: Path) -> dict[str, str]:
    """The baseline as a checkpoint (zoo models) or a torch.export program, and how the child runs it."""
    if getattr(model, ARCH_ATTR, None):
        from prunequant.models import save_checkpoint

        path = save_checkpoint(model, folder / "baseline.pt")
        return {"kind": "checkpoint", "path": str(path), "description": BASELINE_MODULE}
    args, kwargs, dynamic = export_spec(example)
    program = export_program(copy.deepcopy(model).eval(), args, kwargs, dynamic)
    path = save_program(program, folder / "baseline.pt2")
    return {"kind": "program", "path": str(path), "description": BASELINE_PROGRAM}


def _run_child(folder: Path, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    (folder / "request.json").write_text(json.dumps(request))
    command = [sys.executable, "-m", "prunequant.export.pt2e_child", "measure", str(folder / "request.json")]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=child_env())
    except subprocess.TimeoutExpired as err:
        raise ExportError(f"compiling and timing {request['artifact']} took over {timeout_s:.0f} s") from err
    result_path = folder / "result.json"
    if not result_path.is_file():
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExportError(f"the PT2E child process failed (exit {done.returncode}): {tail[:300]}")
    result = json.loads(result_path.read_text())
    if "error" in result:
        raise ExportError(f"PT2E compile/run of {request['artifact']} failed: {result['error']}")
    return result


def _compare(pairs: list[tuple[Inputs, Any]], folder: Path, reference: nn.Module, task: Task) -> dict:
    outputs = torch.load(folder / "parity_outputs.pt", weights_only=True)
    comparison = task.comparison()
    reference = copy.deepcopy(reference).eval()
    with torch.inference_mode():
        for (inputs, target), candidate in zip(pairs, outputs, strict=True):
            comparison.update(run_model(reference, inputs), candidate, target)
    return {"n_batches": len(pairs), **comparison.compute()}
