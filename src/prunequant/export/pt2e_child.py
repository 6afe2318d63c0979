"""The process that compiles one PT2E artifact and runs it: `python -m prunequant.export.pt2e_child ...`.

Two modes, each in a fresh process per artifact (compile caches leak between instances of one model):
- `measure REQUEST.json`: compile, time interleaved against the float baseline in torch eager
  (prunequant.timing's rotating rounds, `repeats` calls each) at each batch size, count the int8
  layers each compilation lowered to oneDNN int8 kernels (at batch 1 inductor decomposes small linears
  into float ops), run the parity inputs, write RESULT.json (and the parity outputs) into the request's
  folder. Driven by pt2e_runner.
- `serve ARTIFACT THREADS`: a worker for `prunequant.export.bench`, answering `load PATH` / `run TOKEN`
  lines on stdin with one line each on its original stdout (everything else it prints goes to stderr).

The artifact is compiled with `torch.compile(dynamic=False)` and inductor freezing, so each batch size
gets its own specialised graph; `compile_s` is the first call at a batch size, compilation included.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from prunequant.export.pt2e_artifact import first_line, load_program
from prunequant.export.pt2e_backend import load_backend
from prunequant.export.pt2e_coverage import graph_coverage
from prunequant.tasks import batch_size_of, run_model
from prunequant.timing import compare

_INT8_KERNEL_COUNTERS = ("qconv_weight_prepack_matcher_count", "qlinear_weight_prepack_matcher_count")


class CompiledArtifact:
    """A loaded .pt2 compiled with inductor freezing; `int8_layers` counts its int8 conv / linear layers."""

    def __init__(self, artifact: str) -> None:
        load_backend()
        torch._inductor.config.freezing = True
        module = load_program(artifact).module()
        self.int8_layers = len(graph_coverage(module).int8_layers)
        self._compiled = torch.compile(module, dynamic=False)

    def __call__(self, inputs: Any) -> Any:
        with torch.no_grad():
            return run_model(self._compiled, inputs)

    def first_call(self, inputs: Any) -> tuple[float, int]:
        """(seconds, int8 layers lowered to oneDNN int8 kernels) of the call that compiles a new shape."""
        from torch._dynamo.utils import counters

        before = sum(counters["inductor"][key] for key in _INT8_KERNEL_COUNTERS)
        start = time.perf_counter()
        self(inputs)
        seconds = time.perf_counter() - start
        return seconds, sum(counters["inductor"][key] for key in _INT8_KERNEL_COUNTERS) - before


def measure(request_path: str) -> None:
    """Run the `measure` request in REQUEST.json; write RESULT.json beside it (an `error` on failure)."""
    folder = Path(request_path).parent
    try:
        request = json.loads(Path(request_path).read_text())
        torch.set_num_threads(request["threads"])
        result = _measure(request, folder)
    except Exception as err:  # reported to the parent, which raises it as an ExportError
        traceback.print_exc(file=sys.stderr)
        result = {"error": f"{type(err).__name__}: {first_line(err)}"}
    (folder / "result.json").write_text(json.dumps(result))


def _measure(request: dict[str, Any], folder: Path) -> dict[str, Any]:
    from prunequant.export.bench import random_inputs

    candidate = CompiledArtifact(request["artifact"])
    baseline = _baseline(request["baseline"]) if request["batches"] else None
    example = torch.load(folder / "example.pt", weights_only=True)
    timings, notes = [], []
    for batch in request["batches"]:
        data = random_inputs(example, batch, request["seed"])
        compile_s, lowered = candidate.first_call(data)
        notes += _shortfall(candidate, batch, lowered)
        timing = {"batch": batch, "compile_s": compile_s, "int8_kernels": lowered}
        figures = interleaved_speedup(
            candidate,
            baseline,
            data,
            rounds=request["rounds"],
            repeats=request["repeats"],
            warmup=request["warmup"],
        )
        timings.append({**timing, **figures})
    if request["parity"]:
        outputs, seen = [], set(request["batches"])
        for inputs in torch.load(folder / "parity_inputs.pt", weights_only=True):
            batch = batch_size_of(inputs)
            if batch not in seen:
                seen.add(batch)
                notes += _shortfall(candidate, batch, candidate.first_call(inputs)[1])
            outputs.append(candidate(inputs))
        torch.save(outputs, folder / "parity_outputs.pt")
    return {"timings": timings, "int8_layers": candidate.int8_layers, "notes": notes}


def _shortfall(candidate: CompiledArtifact, batch: int, lowered: int) -> list[str]:
    if lowered >= candidate.int8_layers:
        return []
    return [
        f"batch {batch}: inductor lowered {lowered} of {candidate.int8_layers} int8 conv/linear layers to "
        "int8 kernels; the others ran in float on dequantized weights"
    ]


def _baseline(spec: dict[str, str]) -> Callable[[Any], Any]:
    """The float baseline in eager torch: a prunequant checkpoint's module, or an exported program."""
    if spec["kind"] == "checkpoint":
        import prunequant.quantization  # noqa: F401  (registers the codecs of fake-quant checkpoints)
        from prunequant.models import load_checkpoint

        model = load_checkpoint(spec["path"])[0].eval()
    else:
        model = load_program(spec["path"]).module()

    def run(inputs: Any) -> Any:
        with torch.inference_mode():
            return run_model(model, inputs)

    return run


def interleaved_speedup(
    candidate: Callable[[Any], Any],
    baseline: Callable[[Any], Any],
    data: Any,
    *,
    rounds: int,
    repeats: int,
    warmup: int,
) -> dict[str, float]:
    """Time `candidate(data)` against `baseline(data)` with `prunequant.timing.compare` (interleaved rounds
    of `repeats` calls each, after `warmup` calls of both).

    Returns
    -------
    dict
        baseline_ms / candidate_ms (medians of all calls) and the speedup baseline / candidate: `speedup`,
        with `speedup_p10` and `speedup_p90` over the per-round ratios.
    """
    result = compare(
        {"baseline": lambda: baseline(data), "candidate": lambda: candidate(data)},
        rounds=rounds,
        repeats=repeats,
        warmup=warmup,
    )
    speedup = result["candidate"].speedup
    return {
        "baseline_ms": result["baseline"].median_ms,
        "candidate_ms": result["candidate"].median_ms,
        "speedup": speedup.value,
        "speedup_p10": speedup.p10,
        "speedup_p90": speedup.p90,
    }


def serve(artifact: str, threads: str) -> None:
    """Answer `load PATH` (-> `ok TOKEN`) and `run TOKEN` (-> `ok`) lines until stdin closes."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed goes to stderr, never into the reply stream
    sys.stdout = sys.stderr
    torch.set_num_threads(int(threads))
    try:
        candidate = CompiledArtifact(artifact)
    except Exception as err:
        replies.write(f"error {type(err).__name__}: {first_line(err)}\n")
        return
    replies.write("ready\n")
    loaded: dict[str, Any] = {}
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        try:
            if command == "load":
                token = str(len(loaded))
                loaded[token] = torch.load(argument, weights_only=True)
                replies.write(f"ok {token}\n")
            elif command == "run":
                candidate(loaded[argument])
                replies.write("ok\n")
            else:
                replies.write(f"error unknown command {command!r}\n")
        except Exception as err:
            replies.write(f"error {type(err).__name__}: {first_line(err)}\n")


if __name__ == "__main__":
    if sys.argv[1] == "measure":
        measure(sys.argv[2])
    else:
        serve(sys.argv[2], sys.argv[3])
