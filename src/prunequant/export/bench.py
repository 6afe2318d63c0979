"""Side-by-side latency of torch (.pt) and onnxruntime (.onnx) models: one process, interleaved rounds.

Timed by prunequant.timing.compare: every round times each model in turn, the order rotating (A B C,
B C A, ...), so load on a shared machine hits all of them alike. Medians, p10 and p90 pool the calls of
all rounds; the speedup is the first model's median / this model's (> 1 = faster), with the p10-p90 of
the per-round ratios. On an oversubscribed machine torch and onnxruntime both fall back to 1 thread
(recorded in the report). An int8 ONNX slower than its fp32 ONNX (same stem without the precision token,
else any fp32 ONNX of the same inputs) is flagged with the likely cause. Peak memory, when
asked for, is measured in a fresh subprocess per model and batch: the growth of the resident set from just
before the model is loaded to its peak (VmHWM, reset first) after 3 runs, with torch and onnxruntime
already imported in both cases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from prunequant.errors import ConfigError, ExportError
from prunequant.export.int8_speed import model_key, slow_int8_cause
from prunequant.export.runtime import OnnxRunner
from prunequant.tasks import Inputs, run_model
from prunequant.timing import Comparison, ThreadPlan, compare, plan_threads, torch_threads
from prunequant.validation import check_int_range

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "67108864", "MALLOC_TRIM_THRESHOLD_": "268435456"}
"""glibc settings that stop eager PyTorch from page-faulting on every large activation (see DESIGN.md)."""
_RESTART_GUARD = "PRUNEQUANT_MALLOC_RESTARTED"


@dataclass(frozen=True)
class Candidate:
    """One model to time: `predict` maps a prepared batch (from `prepare`) to outputs.

    ONNX candidates also carry their `precision`, file `metadata`, input `signature` (names and shapes,
    to match an int8 file with its fp32 twin) and the `threads` their session was built with.
    """

    name: str
    runtime: str
    predict: Callable[[object], object]
    prepare: Callable[[torch.Tensor], object]
    sample_shape: tuple[int, ...] | None
    bytes: int | None = None
    path: Path | None = None
    precision: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    signature: tuple | None = None
    threads: int | None = None


def torch_candidate(
    name: str, model: nn.Module, sample_shape: Sequence[int] | None = None, path: Path | None = None
) -> Candidate:
    """A torch eager model, run under inference_mode."""
    model.eval()

    def predict(batch: object) -> object:
        with torch.inference_mode():
            return run_model(model, batch)

    size = path.stat().st_size if path else None
    shape = tuple(sample_shape) if sample_shape else None
    return Candidate(name, "torch", predict, lambda batch: batch, shape, size, path)


def onnx_candidate(name: str, runner: OnnxRunner) -> Candidate:
    """An OnnxRunner; batches (tensor, tuple or dict) become its NumPy feed before timing starts."""
    shape = runner.sample_shape if None not in runner.sample_shape and len(runner.input_names) == 1 else None
    return Candidate(
        name,
        "onnxruntime",
        runner.run_numpy,
        runner.feed,
        shape,
        runner.bytes,
        runner.path,
        runner.precision,
        dict(runner.metadata),
        (tuple(runner.input_names), tuple(runner.sample_shapes)),
        runner.threads,
    )


def load_candidate(path: str | os.PathLike[str], threads: int | None = None) -> Candidate:
    """A .pt checkpoint (torch eager), an .onnx file (onnxruntime) or a .pt2 PT2E artifact (compiled in its
    own worker process, see pt2e_worker), named by its path."""
    path = Path(path)
    if path.suffix == ".onnx":
        return onnx_candidate(str(path), OnnxRunner(path, threads))
    if path.suffix == ".pt2":
        from prunequant.export.pt2e_worker import pt2e_candidate

        return pt2e_candidate(path, threads)
    if path.suffix in (".pt", ".pth"):
        import prunequant.quantization  # noqa: F401  (registers the codecs of fake-quant checkpoints)
        from prunequant.models import load_checkpoint

        model, meta = load_checkpoint(path)
        return torch_candidate(str(path), model, meta.get("input_shape"), path)
    raise ConfigError(
        f"cannot bench {path}: give .pt checkpoints (torch eager), .onnx files (onnxruntime) or .pt2 "
        "PT2E artifacts (torch-int8)"
    )


@dataclass(frozen=True)
class BenchRow:
    """Latency of one model at one batch size.

    ratio_vs_first is the speedup: the first model's median / this one's (> 1 = faster), from the same
    rounds as `median_ms`; speedup_p10 / speedup_p90 spread the per-round ratios. `noisy`: the rounds
    spread wider than prunequant.timing.NOISY_SPREAD or the machine was busier than its cores.
    `int8_slower`: set on an int8 ONNX slower than its fp32 ONNX, with the likely cause.
    """

    model: str
    runtime: str
    batch: int
    median_ms: float
    p90_ms: float
    ratio_vs_first: float
    bytes: int | None
    peak_rss_delta_mb: float | None = None
    p10_ms: float | None = None
    speedup_p10: float | None = None
    speedup_p90: float | None = None
    noisy: bool = False
    int8_slower: str | None = None

    @property
    def flags(self) -> list[str]:
        """'noisy' and the int8-slower note, for display."""
        return [text for text in ("noisy" if self.noisy else None, self.int8_slower) if text]


COLUMNS = (
    "model",
    "runtime",
    "batch",
    "median ms",
    "p10-p90 ms",
    "speedup",
    "speedup p10-p90",
    "MB on disk",
    "peak RSS +MB",
    "flags",
)


@dataclass(frozen=True)
class BenchReport:
    """All rows, and the conditions they were measured under.

    `threads` (= `threads_used`) ran every runtime; `threads_requested` were asked for; `oversubscribed`
    and `thread_reason` say whether and why the bench fell back to 1 thread; `load_average` is the 1-minute
    load at the start; `noisy` is any row noisy.
    """

    rows: list[BenchRow]
    threads: int
    rounds: int
    repeats: int
    malloc_tuned: bool
    memory: str = field(default="not measured")
    threads_requested: int | None = None
    oversubscribed: bool = False
    thread_reason: str = ""
    load_average: float | None = None

    @property
    def threads_used(self) -> int:
        return self.threads

    @property
    def noisy(self) -> bool:
        return any(row.noisy for row in self.rows)

    @property
    def flagged(self) -> list[str]:
        """One line per flagged row: 'model @ batch B: flag; flag'."""
        return [f"{row.model} @ batch {row.batch}: {'; '.join(row.flags)}" for row in self.rows if row.flags]

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "threads_used": self.threads_used,
            "noisy": self.noisy,
            "rows": [asdict(row) for row in self.rows],
        }

    def cells(self) -> list[list[str]]:
        """The rows as display strings, in COLUMNS order."""
        return [
            [
                row.model,
                row.runtime,
                str(row.batch),
                f"{row.median_ms:.2f}",
                "-" if row.p10_ms is None else f"{row.p10_ms:.2f}-{row.p90_ms:.2f}",
                f"{row.ratio_vs_first:.2f}x",
                "-" if row.speedup_p10 is None else f"{row.speedup_p10:.2f}-{row.speedup_p90:.2f}x",
                "-" if row.bytes is None else f"{row.bytes / 1e6:.2f}",
                "-" if row.peak_rss_delta_mb is None else f"{row.peak_rss_delta_mb:.1f}",
                "; ".join(row.flags) or "-",
            ]
            for row in self.rows
        ]

    def markdown(self) -> str:
        """The rows as a markdown table."""
        header = f"| {' | '.join(COLUMNS)} |\n|---|---|{'---:|' * (len(COLUMNS) - 2)}"
        return "\n".join([header, *(f"| {' | '.join(cells)} |" for cells in self.cells())])


def bench(
    entries: Sequence[str | os.PathLike[str] | Candidate],
    batches: Sequence[int] = (1, 64),
    threads: int | None = None,
    *,
    rounds: int = 5,
    repeats: int = 10,
    warmup: int = 3,
    input_shape: Sequence[int] | None = None,
    memory: bool = False,
    seed: int = 0,
    example: Inputs | None = None,
    thread_fallback: bool = True,
    clock: Callable[[], float] | None = None,
) -> BenchReport:
    """Time every entry at every batch size, interleaved over `rounds`; speedups are against entries[0].

    Paths are loaded with `load_candidate`; `memory=True` adds each path's peak RSS growth (subprocess).
    torch and onnxruntime both use `threads` (default: all cores) for the whole run, or 1 thread when the
    machine is oversubscribed (unless `thread_fallback` is False; see prunequant.timing.plan_threads).
    `example` (a batched tensor, tuple or dict, for models with several inputs) fixes the inputs' shapes,
    names and dtypes: each batch holds random values of those shapes (memory is then measured for
    one-input models only). `clock` (seconds) is for tests; default time.perf_counter.
    """
    if not entries:
        raise ConfigError("nothing to bench: give at least one .pt or .onnx file")
    if threads is not None:
        check_int_range("threads", threads, 1, 4096)
    for name, value in (("rounds", rounds), ("repeats", repeats)):
        check_int_range(name, value, 1, 100_000)
    check_int_range("warmup", warmup, 0, 100_000)
    if not batches:
        raise ConfigError("no batch sizes: give at least one, e.g. --batch 1,64")
    for batch in batches:
        check_int_range("batch size", batch, 1, 1_000_000)
    plan = plan_threads(threads, fallback=thread_fallback)
    used = plan.used
    with torch_threads(used):
        candidates = [e if isinstance(e, Candidate) else load_candidate(e, used) for e in entries]
        shape = () if example is not None else _common_shape(candidates, input_shape)
        timer = {"rounds": rounds, "repeats": repeats, "warmup": warmup, "threads": plan}
        if clock is not None:
            timer["clock"] = clock
        rows = []
        for batch in batches:
            data = random_inputs(example, batch, seed) if example is not None else None
            rows.extend(_time_batch(candidates, batch, shape, seed, timer, data))
    if memory and example is None:
        rows = [_with_memory(row, candidates, shape, used) for row in rows]
    return BenchReport(
        rows,
        used,
        rounds,
        repeats,
        malloc_tuned(),
        "peak RSS growth in a fresh subprocess: VmHWM after 3 runs minus VmRSS before loading (Linux /proc)"
        if memory
        else "not measured",
        plan.requested,
        plan.oversubscribed,
        _thread_reason(plan, candidates),
        plan.load,
    )


def _thread_reason(plan: ThreadPlan, candidates: list[Candidate]) -> str:
    """The plan's reason, plus any ready-made session that runs at other threads than the rest."""
    other = [f"{c.name} ({c.threads})" for c in candidates if c.threads not in (None, plan.used)]
    if not other:
        return plan.reason
    return f"{plan.reason}; sessions built with other thread counts: {', '.join(other)}"


def _time_batch(
    candidates: list[Candidate],
    batch: int,
    shape: tuple[int, ...],
    seed: int,
    timer: dict,
    data: Inputs | None = None,
) -> list[BenchRow]:
    if data is None:
        data = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))
    keys = [str(index) for index in range(len(candidates))]  # names may repeat
    prepared = [c.prepare(data) for c in candidates]
    calls = {key: _bound(c.predict, p) for key, c, p in zip(keys, candidates, prepared, strict=True)}
    result = compare(calls, **timer)
    slower = _int8_slower(candidates, keys, result)
    rows = []
    for key, candidate in zip(keys, candidates, strict=True):
        timing = result[key]
        rows.append(
            BenchRow(
                candidate.name,
                candidate.runtime,
                batch,
                timing.median_ms,
                timing.p90_ms,
                timing.speedup.value,
                candidate.bytes,
                p10_ms=timing.p10_ms,
                speedup_p10=timing.speedup.p10,
                speedup_p90=timing.speedup.p90,
                noisy=timing.noisy,
                int8_slower=slower.get(key),
            )
        )
    return rows


def _bound(predict: Callable[[object], object], prepared: object) -> Callable[[], object]:
    return lambda: predict(prepared)


def _int8_slower(candidates: list[Candidate], keys: list[str], result: Comparison) -> dict[str, str]:
    """Key -> note for each int8 ONNX slower than its fp32 ONNX in the same rounds."""
    fp32 = [(k, c) for k, c in zip(keys, candidates, strict=True) if _is_onnx(c, "fp32")]
    notes = {}
    for key, candidate in zip(keys, candidates, strict=True):
        if not _is_onnx(candidate, "int8"):
            continue
        twin = _fp32_twin(candidate, fp32)
        if twin is None:
            continue
        speedup = result.ratio(twin[0], key)
        if speedup.value >= 1.0:
            continue
        noise = "" if speedup.p90 < 1.0 else ", within the noise"
        notes[key] = (
            f"int8 slower than fp32 {twin[1].name}: {speedup.describe()}{noise}; likely cause: "
            f"{slow_int8_cause(candidate.metadata, candidate.path)}"
        )
    return notes


def _is_onnx(candidate: Candidate, precision: str) -> bool:
    return candidate.runtime == "onnxruntime" and candidate.precision == precision


def _fp32_twin(int8: Candidate, fp32: list[tuple[str, Candidate]]) -> tuple[str, Candidate] | None:
    """The fp32 ONNX of the same stem, else the first fp32 ONNX with the same inputs."""
    same_stem = [pair for pair in fp32 if model_key(pair[1].name) == model_key(int8.name)]
    same_inputs = [pair for pair in fp32 if pair[1].signature == int8.signature]
    return (same_stem or same_inputs or [None])[0]


def random_inputs(example: Inputs, batch: int, seed: int = 0) -> Inputs:
    """Inputs shaped like `example` with `batch` samples: random normal floats, other dtypes repeated."""
    generator = torch.Generator().manual_seed(seed)

    def fill(tensor: torch.Tensor) -> torch.Tensor:
        shape = (batch, *tensor.shape[1:])
        if tensor.is_floating_point():
            return torch.randn(shape, generator=generator)
        return tensor[:1].expand(shape).contiguous()

    if isinstance(example, dict):
        return {key: fill(value) for key, value in example.items()}
    if isinstance(example, (tuple, list)):
        return tuple(fill(value) for value in example)
    return fill(example)


def _common_shape(candidates: list[Candidate], input_shape: Sequence[int] | None) -> tuple[int, ...]:
    if input_shape:
        return tuple(int(d) for d in input_shape)
    known = {c.sample_shape for c in candidates if c.sample_shape}
    if len(known) > 1:
        described = ", ".join(
            f"{c.name}: {'x'.join(map(str, c.sample_shape))}" for c in candidates if c.sample_shape
        )
        raise ConfigError(f"the models take different input shapes ({described}); bench models of one input")
    if not known:
        raise ConfigError("input shape unknown: pass --input-shape C,H,W (e.g. 3,32,32)")
    return known.pop()


def malloc_tuned() -> bool:
    """Whether this process STARTED with the glibc malloc settings (os.environ edits come too late)."""
    try:
        started = dict(
            item.split("=", 1) for item in Path("/proc/self/environ").read_text().split("\0") if "=" in item
        )
    except OSError:
        started = dict(os.environ)
    return all(started.get(key) == value for key, value in MALLOC_ENV.items())


def restart_with_tuned_malloc(argv: Sequence[str]) -> None:
    """Replace this process by `argv` run with MALLOC_ENV set, unless it started with them (then return).

    glibc reads the variables only at start-up, so setting them in os.environ is useless; a guard variable
    stops a second restart if the platform ignores them.
    """
    if malloc_tuned() or os.environ.get(_RESTART_GUARD):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv], {**os.environ, **MALLOC_ENV, _RESTART_GUARD: "1"})


def _with_memory(
    row: BenchRow, candidates: list[Candidate], shape: tuple[int, ...], threads: int
) -> BenchRow:
    path = next((c.path for c in candidates if c.name == row.model), None)
    if path is None:
        return row
    return BenchRow(
        **{**asdict(row), "peak_rss_delta_mb": peak_rss_delta_mb(path, row.batch, shape, threads)}
    )


def peak_rss_delta_mb(path: Path, batch: int, shape: Sequence[int], threads: int) -> float:
    """Peak RSS growth (MiB) of loading `path` and running it 3 times on a batch, in a fresh subprocess."""
    command = [
        sys.executable,
        "-m",
        "prunequant.export.bench",
        str(path),
        str(batch),
        ",".join(map(str, shape)),
        str(threads),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=os.environ.copy())
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExportError(f"memory measurement of {path} failed ({tail[:200]})")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_delta_mb"])


def _memory_child(path: str, batch: str, shape: str, threads: str) -> None:
    import onnxruntime  # noqa: F401  (imported before the baseline so both runtimes pay it alike)

    torch.set_num_threads(int(threads))
    data = torch.randn(int(batch), *(int(d) for d in shape.split(",")))
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _proc_status_kib("VmRSS")
    candidate = load_candidate(path, int(threads))
    prepared = candidate.prepare(data)
    for _ in range(3):
        candidate.predict(prepared)
    print(json.dumps({"peak_rss_delta_mb": (_proc_status_kib("VmHWM") - before) / 1024}))


def _proc_status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {key}")


if __name__ == "__main__":
    _memory_child(*sys.argv[1:5])
