"""Oversubscription: is the machine too busy for the threads we want? Then fall back to 1 thread for every
runtime alike, so that OpenMP barrier stalls in one runtime cannot inflate a ratio against another.

The 1-minute load average counts runnable threads of every process, ours included; the one thread running
this check is subtracted, the rest is "load from other processes". It cannot tell our own work of the
last minute (a training run) from someone else's, so a false alarm is possible: it only costs running at
1 thread, which is the setting the timing rules recommend anyway.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch

OWN_RUNNING_THREADS = 1.0
"""The thread doing the check, which the load average already counts."""


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_average() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


@dataclass(frozen=True)
class ThreadPlan:
    """The thread count chosen for a measurement, and why.

    `requested` threads were asked for, `used` are used by every runtime; `oversubscribed` when the load of
    other processes plus `requested` exceeds `cores`; `busy` when the load average alone exceeds `cores`
    (the measurement is then flagged noisy whatever the threads).
    """

    requested: int
    used: int
    cores: int
    load: float | None
    oversubscribed: bool
    busy: bool
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def plan_threads(requested: int | None = None, *, fallback: bool = True, warn: bool = True) -> ThreadPlan:
    """Decide the thread count for timing; warn when the machine is oversubscribed.

    Parameters
    ----------
    requested:
        Threads wanted (default: every available core).
    fallback:
        Use 1 thread when oversubscribed (default); False keeps `requested` and only records the warning.
    warn:
        Emit the oversubscription warning (a RuntimeWarning); False only records it in the plan.

    Returns
    -------
    The ThreadPlan; apply it with `torch_threads(plan.used)` and give onnxruntime `plan.used` threads.
    """
    cores = available_cores()
    wanted = max(1, requested or cores)
    load = load_average()
    others = max(0.0, load - OWN_RUNNING_THREADS) if load is not None else 0.0
    oversubscribed = load is not None and others + wanted > cores
    busy = load is not None and load > cores
    used = 1 if oversubscribed and fallback else wanted
    if not oversubscribed:
        reason = (
            "load unknown"
            if load is None
            else f"load {load:.2f} leaves room for {wanted} thread(s) on {cores} cores"
        )
    else:
        detail = f"load {others:.2f} from other processes + {wanted} thread(s) > {cores} cores"
        if used < wanted:
            reason = f"oversubscribed ({detail}): 1 thread for every runtime"
        elif wanted == 1:
            reason = f"oversubscribed even at 1 thread ({detail}): timings are noisy"
        else:
            reason = f"oversubscribed ({detail}): kept {wanted} threads as asked; ratios may be inflated"
        if warn:
            warnings.warn(f"timing: {reason}", RuntimeWarning, stacklevel=2)
    return ThreadPlan(wanted, used, cores, load, oversubscribed, busy, reason)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with torch at `count` intra-op threads; restore the previous count afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
