"""interleaved_latency: warm-up, A B B A rounds, and the median of per-round ratios (fake clock)."""

from __future__ import annotations

import pytest

from prunequant.pruning.unstructured import timing


def test_abba_rounds_and_median_ratio(monkeypatch):
    clock = {"now": 0.0}
    calls: list[str] = []
    # 2 warm-up calls each, then 3 rounds of base, cand, cand, base (ms per call)
    costs = {"cand": iter([0, 0, 2, 2, 9, 9, 3, 3]), "base": iter([0, 0, 1, 1, 1, 1, 1, 1])}

    def runner(name):
        def run():
            calls.append(name)
            clock["now"] += next(costs[name]) / 1e3

        return run

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["now"])
    result = timing.interleaved_latency(runner("cand"), runner("base"), rounds=3, warmup=2)
    assert calls[4:8] == ["base", "cand", "cand", "base"] and len(calls) == 16
    assert result["ratio"] == pytest.approx(3.0)  # median of 2/1, 9/1, 3/1: the spike moves one round only
    assert result["candidate_ms"] == pytest.approx(3.0) and result["baseline_ms"] == pytest.approx(1.0)
