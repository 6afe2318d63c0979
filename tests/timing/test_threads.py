"""Oversubscription: the decision from load and cores (monkeypatched), the warning, and torch's threads."""

from __future__ import annotations

import warnings

import pytest
import torch

from prunequant.timing import compare, plan_threads, torch_threads


def test_room_to_spare_keeps_the_threads(machine):
    machine(load=1.0, cores=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = plan_threads(4)
    assert (plan.requested, plan.used, plan.oversubscribed, plan.busy) == (4, 4, False, False)
    assert plan_threads().requested == 4  # default: every available core


def test_busy_machine_falls_back_to_one_thread(machine):
    machine(load=3.0, cores=2)  # 2 from others + 2 threads > 2 cores
    with pytest.warns(RuntimeWarning, match="1 thread for every runtime"):
        plan = plan_threads(2)
    assert plan.oversubscribed and plan.used == 1 and plan.busy
    assert "load 2.00 from other processes + 2 thread(s) > 2 cores" in plan.reason
    with pytest.warns(RuntimeWarning, match="kept 2 threads"):
        assert plan_threads(2, fallback=False).used == 2
    with pytest.warns(RuntimeWarning, match="even at 1 thread"):
        assert plan_threads(1).used == 1


def test_unknown_load_is_recorded(monkeypatch):
    from prunequant.timing import threads

    def no_load():
        raise OSError("no load average")

    monkeypatch.setattr(threads.os, "getloadavg", no_load)
    plan = plan_threads(2)
    assert plan.load is None and not plan.oversubscribed and plan.reason == "load unknown"


def test_torch_threads_are_restored_after_a_fallback(machine, clock):
    machine(load=4.0, cores=2)
    before = torch.get_num_threads()
    seen = []
    tick = clock.spy("a", 1.0)

    def record_threads() -> None:
        seen.append(torch.get_num_threads())
        tick()

    with pytest.warns(RuntimeWarning):
        result = compare({"a": record_threads}, rounds=1, warmup=0, clock=clock)
    assert seen == [1] and result.threads.used == 1 and torch.get_num_threads() == before
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
