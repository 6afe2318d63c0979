import pytest

from prunequant.lab.budget import Budget, parse_drop
from prunequant.lab.combine import choose_levels
from prunequant.lab.select import best_trial, within_budget
from prunequant.tasks import MetricSpec, default_task

EPE = MetricSpec("epe", "px", False, "EPE")


def top1(max_drop: float) -> Budget:
    return Budget(default_task().metric("top1"), max_drop)


def test_within_budget_is_inclusive_at_the_limit(make_row):
    baseline = make_row("profile", 0.90)
    assert within_budget(make_row("post_prune", 0.85), baseline, top1(0.05))
    assert not within_budget(make_row("post_prune", 0.8499), baseline, top1(0.05))
    assert not within_budget(make_row("post_prune", None), baseline, top1(0.05))


def test_budget_follows_a_lower_is_better_metric_absolute_and_relative(make_row):
    baseline = make_row("profile", 2.0)
    absolute, relative = Budget(EPE, 0.5), Budget(EPE, *parse_drop("3%"))
    assert within_budget(make_row("x", 2.5), baseline, absolute)
    assert not within_budget(make_row("x", 2.51), baseline, absolute)
    assert within_budget(make_row("x", 1.0), baseline, absolute)  # better is always within
    assert within_budget(make_row("x", 2.06), baseline, relative)
    assert not within_budget(make_row("x", 2.07), baseline, relative)
    assert parse_drop("3%") == (0.03, True) and parse_drop(0.5) == (0.5, False)
    with pytest.raises(Exception, match="percentage"):
        parse_drop("3 px")


def test_best_trial_breaks_ties_in_the_metric_direction(make_row):
    baseline = make_row("profile", 2.0)
    rows = [make_row("post_prune", 2.4, file_bytes=100), lower := make_row("post_quant", 2.1, file_bytes=100)]
    assert best_trial(rows, baseline, Budget(EPE, 0.5), "size") is lower


def test_best_trial_minimises_the_objective_within_budget(make_row):
    baseline = make_row("profile", 0.90, file_bytes=1000, speedup=1.0)
    rows = [
        small_but_bad := make_row("post_prune", 0.70, file_bytes=100, speedup=2.0),
        make_row("post_quant", 0.89, file_bytes=400, speedup=1.1),
        tie_better := make_row("aware_quant", 0.90, file_bytes=400, speedup=1.05),
        fast := make_row("structured", 0.88, file_bytes=600, speedup=2.5),
        make_row("export", 0.90, file_bytes=10, speedup=9.0),  # not a model stage
        make_row("search", 0.95, status="failed", file_bytes=1),
    ]
    assert best_trial(rows, baseline, top1(0.05), "size") is tie_better
    assert best_trial(rows, baseline, top1(0.05), "latency") is fast
    assert best_trial(rows, baseline, top1(0.25), "size") is small_but_bad
    assert best_trial(rows, baseline, top1(0.0), "size") is tie_better


def test_objective_values_are_bytes_or_runtime_relative_to_the_original(make_row):
    row = make_row("x", file_bytes=300, speedup=4.0)
    assert row.cost("size") == 300 and row.cost("latency") == 0.25
    assert make_row("x").cost("latency") is None


def _prune(make_row, amount, val):
    return make_row("aware_prune", val, config={"steps": [{"op": "prune", "amount": amount}]})


def _quant(make_row, bits, val):
    return make_row("aware_quant", val, config={"steps": [{"op": "quantize", "w_bits": bits}]})


def test_combine_takes_the_largest_amount_and_fewest_bits_within_budget(make_row):
    baseline = make_row("profile", 0.90)
    prune = [_prune(make_row, 0.1, 0.90), _prune(make_row, 0.2, 0.86), _prune(make_row, 0.3, 0.84)]
    quant = [_quant(make_row, 8, 0.91), _quant(make_row, 6, 0.85), _quant(make_row, 4, 0.60)]
    choice = choose_levels(prune, quant, baseline, top1(0.05))
    assert (choice.amount, choice.bits) == (0.2, 6)
    assert choice.to_dict() == {
        "amount": 0.2,
        "bits": 6,
        "prune_trial": prune[1].trial_id,
        "quant_trial": quant[1].trial_id,
    }


def test_combine_skips_a_method_with_no_level_within_budget(make_row):
    baseline = make_row("profile", 0.90)
    choice = choose_levels([_prune(make_row, 0.5, 0.5)], [_quant(make_row, 8, 0.9)], baseline, top1(0.01))
    assert (choice.amount, choice.bits, choice.prune) == (None, 8, None)
