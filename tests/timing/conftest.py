"""A fake clock and spy callables, so timing tests never depend on wall time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from prunequant.timing import threads


class FakeClock:
    """Seconds that move only when a spy callable says how long it 'ran'."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []

    def __call__(self) -> float:
        return self.now

    def spy(self, name: str, durations_ms: Iterator[float] | float) -> Callable[[], None]:
        """A callable that records its name and advances the clock by its next duration (ms)."""

        def run() -> None:
            self.calls.append(name)
            step = durations_ms if isinstance(durations_ms, float) else next(durations_ms)
            self.now += step / 1e3

        return run


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def machine(monkeypatch) -> Callable[..., None]:
    """machine(load=, cores=): fake the 1-minute load average and the CPU affinity."""

    def fake(*, load: float, cores: int) -> None:
        monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, load, load))
        monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(cores)))

    return fake


@pytest.fixture
def idle(machine) -> None:
    """A 4-core machine at load 1.0 (only the test's own thread): never oversubscribed at <= 4 threads."""
    machine(load=1.0, cores=4)
