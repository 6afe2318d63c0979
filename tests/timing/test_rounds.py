"""compare(): warm-up, rotated and reversed round order, per-callable spreads, ratios and the noisy flag."""

from __future__ import annotations

import itertools

import pytest

from prunequant.errors import ConfigError
from prunequant.timing import compare, measure, round_order

pytestmark = pytest.mark.usefixtures("idle")


def test_round_order_rotates_and_reverses():
    names = ["a", "b", "c"]
    orders = [round_order(names, i) for i in range(6)]
    assert orders[:3] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert orders[3:] == [["c", "b", "a"], ["a", "c", "b"], ["b", "a", "c"]]
    for position in range(3):  # each callable takes each place equally often
        assert sorted(order[position] for order in orders) == ["a", "a", "b", "b", "c", "c"]
    assert [round_order(["a", "b"], i) for i in range(4)] == [["a", "b"], ["b", "a"], ["b", "a"], ["a", "b"]]


def test_calls_are_warmed_up_then_interleaved(clock):
    calls = {name: clock.spy(name, 1.0) for name in ("base", "cand")}
    compare(calls, rounds=4, repeats=2, warmup=1, clock=clock)
    rounds = [("base", "cand"), ("cand", "base"), ("cand", "base"), ("base", "cand")]
    assert clock.calls == ["base", "cand"] + [name for order in rounds for name in order for _ in range(2)]


def test_spread_and_speedup_on_a_fake_clock(clock):
    base = clock.spy("base", iter([99.0, 10.0, 11.0, 12.0, 13.0]))  # first call is the warm-up
    cand = clock.spy("cand", iter([99.0, 5.0, 5.0, 6.0, 6.5]))
    result = compare({"base": base, "cand": cand}, rounds=4, warmup=1, clock=clock)
    b, c = result["base"], result["cand"]
    assert b.median_ms == pytest.approx(11.5) and c.median_ms == pytest.approx(5.5)
    assert b.latency.count == 4 and b.p10_ms == pytest.approx(10.3) and b.p90_ms == pytest.approx(12.7)
    assert c.speedup.value == pytest.approx(11.5 / 5.5)  # baseline / candidate: > 1 is faster
    ratios = sorted([10 / 5, 11 / 5, 12 / 6, 13 / 6.5])
    assert c.speedup.rounds.median == pytest.approx((ratios[1] + ratios[2]) / 2)
    assert b.speedup.value == 1.0 and result.baseline == "base"
    assert result.ratio("cand", "base").value == pytest.approx(5.5 / 11.5)
    assert not result.noisy and result.threads.used >= 1


def test_named_baseline_and_noisy_candidate(clock):
    steady = clock.spy("steady", 10.0)
    jumpy = clock.spy("jumpy", itertools.cycle([5.0, 9.0]))
    result = compare({"jumpy": jumpy, "steady": steady}, baseline="steady", rounds=6, warmup=0, clock=clock)
    assert result.baseline == "steady" and result["jumpy"].noisy and result.noisy
    assert not result["steady"].noisy
    assert result["jumpy"].speedup.p90 / result["jumpy"].speedup.p10 > 1.25


def test_noisy_when_load_exceeds_the_cores(clock, machine):
    machine(load=5.0, cores=2)
    with pytest.warns(RuntimeWarning, match="oversubscribed"):
        timing = compare({"a": clock.spy("a", 1.0)}, rounds=2, warmup=0, clock=clock)
    assert timing.threads.busy and timing["a"].noisy and timing.noisy  # steady samples, busy machine


def test_measure_and_bad_arguments(clock):
    timing = measure(clock.spy("m", 2.0), rounds=3, warmup=2, clock=clock)
    assert len(clock.calls) == 5 and timing.median_ms == pytest.approx(2.0) and timing.latency.count == 3
    with pytest.raises(ConfigError, match="baseline 'x'"):
        compare({"a": clock.spy("a", 1.0)}, baseline="x")
    with pytest.raises(ConfigError, match="nothing to time"):
        compare({})
    with pytest.raises(ConfigError, match="rounds"):
        compare({"a": clock.spy("a", 1.0)}, rounds=0)


def test_the_comparison_is_json_ready(clock):
    import json

    result = compare({"a": clock.spy("a", 2.0), "b": clock.spy("b", 1.0)}, rounds=2, warmup=0, clock=clock)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["baseline"] == "a" and data["threads"]["used"] >= 1 and data["noisy"] is False
    b = data["timings"][1]
    assert b["speedup"]["value"] == pytest.approx(2.0) and b["latency_ms"]["iqr"] == pytest.approx(0.0)
