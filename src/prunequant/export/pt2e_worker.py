"""A PT2E artifact as a `prunequant.export.bench` candidate: compiled and run in its own worker process.

bench interleaves its candidates in one process, but compile caches leak between instances, so each .pt2
is compiled by a fresh `pt2e_child serve` process. `prepare` sends a batch once (a tensor file); each
`predict` is one `run` request answered when the compiled model has run, so bench's timings include one
pipe round trip per call (tens of microseconds; it matters only for sub-millisecond models). The first
call at each batch size compiles (bench's warm-up). pt2e_runner gives the child-side figures instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path
from typing import Any

import torch

from prunequant.errors import ExportError
from prunequant.export.bench import Candidate
from prunequant.export.pt2e_artifact import load_program
from prunequant.export.pt2e_int8 import RUNTIME
from prunequant.export.pt2e_runner import child_env


class Pt2eWorker:
    """One `pt2e_child serve` process holding the compiled artifact; stopped with the object."""

    def __init__(self, path: Path, threads: int) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="pq-pt2e-worker-"))
        command = [sys.executable, "-m", "prunequant.export.pt2e_child", "serve", str(path), str(threads)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env()
        )
        self._finalizer = weakref.finalize(self, _stop, self._process, self._folder)
        reply = self._reply()
        if reply != "ready":
            self._finalizer()
            raise ExportError(f"cannot compile {path} for timing: {reply.removeprefix('error ')}")

    def prepare(self, inputs: Any) -> str:
        """Send `inputs` to the worker once; the token that `predict` runs them by."""
        file = self._folder / f"inputs{len(os.listdir(self._folder))}.pt"
        torch.save(inputs, file)
        return self._request(f"load {file}").removeprefix("ok ")

    def predict(self, token: str) -> None:
        """Run the compiled model on the inputs of `token` (outputs stay in the worker)."""
        self._request(f"run {token}")

    def _request(self, line: str) -> str:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
        except BrokenPipeError as err:
            raise ExportError("the PT2E worker process ended unexpectedly") from err
        reply = self._reply()
        if not reply.startswith("ok"):
            raise ExportError(f"the PT2E worker failed: {reply.removeprefix('error ')}")
        return reply

    def _reply(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        return line.strip() or f"error the worker exited (code {self._process.poll()})"


def _stop(process: subprocess.Popen, folder: Path) -> None:
    if process.stdin is not None:
        process.stdin.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    shutil.rmtree(folder, ignore_errors=True)


def pt2e_candidate(path: str | os.PathLike[str], threads: int | None = None) -> Candidate:
    """A bench Candidate for a .pt2 artifact: runtime RUNTIME, timed through a Pt2eWorker.

    The artifact is checked and its input shape read here; peak memory is not measured for it (the work
    happens in the worker process), so `path` stays unset on the candidate.
    """
    path = Path(path)
    program = load_program(path)
    args, kwargs = program.example_inputs or ((), {})
    tensors = [*args, *kwargs.values()]
    shape = tuple(tensors[0].shape[1:]) if len(tensors) == 1 else None
    worker = Pt2eWorker(path, threads or 1)
    return Candidate(str(path), RUNTIME, worker.predict, worker.prepare, shape, path.stat().st_size)
