"""The file to run per batch size: the shipped form, unless another form of its trial within the budget is
faster at that batch beyond the tie floor."""

import pytest

from prunequant.lab.budget import Budget
from prunequant.lab.per_batch import PER_BATCH_RULE, per_batch_picks
from prunequant.lab.select import TIE_FLOOR, best_choice
from prunequant.tasks import default_task

BUDGET = Budget(default_task().metric("top1"), 0.02)


@pytest.fixture
def baseline(make_row):
    return make_row("profile", 0.90)


@pytest.fixture
def trial_of(forms_row, make_form):
    """trial_of((runtime, val, bytes, speedup at 64, speedup at 1), ...) -> a row with those forms."""

    def make(*forms: tuple) -> object:
        return forms_row("structured", 0.9, *(make_form(*form[:4], batch1=form[4]) for form in forms))

    return make


def picks_of(rows, baseline, objective="latency"):
    main = best_choice(rows, baseline, BUDGET, objective)
    picks = per_batch_picks(rows, main, baseline, BUDGET, objective)
    return main, {pick.batch: pick for pick in picks}


def test_one_form_fastest_at_both_batches_is_the_pick_at_each(baseline, trial_of):
    trial = trial_of(
        ("onnxruntime-fp32", 0.90, 160, 3.0, 6.0),
        ("onnxruntime-int8", 0.89, 60, 6.0, 18.0),
    )
    main, picks = picks_of([baseline, trial], baseline)
    assert main.runtime == "onnxruntime-int8" and sorted(picks) == [1, 64]
    assert all(pick.choice is main for pick in picks.values())
    (passed, reason), *more = picks[1].passed
    assert passed.runtime == "onnxruntime-fp32" and not more and "not faster than the shipped file" in reason


def test_another_form_of_the_trial_faster_at_batch_1_is_the_pick_there(baseline, trial_of):
    trial = trial_of(
        ("onnxruntime-int8", 0.895, 50, 3.2, 18.1),
        ("pt2e-int8", 0.895, 60, 6.0, 2.0),
    )
    other = trial_of(("onnxruntime-int8", 0.9, 40, 5.0, 40.0))
    main, picks = picks_of([baseline, trial, other], baseline)
    assert (main.row, main.runtime) == (trial, "pt2e-int8")
    assert picks[64].choice is main
    assert (picks[1].choice.row, picks[1].choice.runtime) == (trial, "onnxruntime-int8")  # not `other`
    assert dict((c.runtime, why) for c, why in picks[1].passed) == {
        "pt2e-int8": "onnxruntime-int8 is faster here beyond the tie floor"
    }
    assert "same trial" in PER_BATCH_RULE and f"{100 * TIE_FLOOR:.0f}%" in PER_BATCH_RULE


def test_a_faster_form_outside_the_budget_is_not_used_and_says_why(baseline, trial_of):
    trial = trial_of(
        ("onnxruntime-int8", 0.85, 50, 3.2, 18.0),
        ("pt2e-int8", 0.895, 60, 6.0, 2.0),
    )
    main, picks = picks_of([baseline, trial], baseline)
    assert main.runtime == "pt2e-int8" and picks[1].choice is main
    assert [(c.runtime, why) for c, why in picks[1].passed] == [
        ("onnxruntime-int8", "outside the budget (its own validation score)")
    ]


def test_a_form_faster_within_the_tie_floor_keeps_the_shipped_file(baseline, trial_of):
    near = 2.2  # the shipped file's 2.0x is 91% of it: a tie
    trial = trial_of(
        ("onnxruntime-int8", 0.895, 50, 3.2, near),
        ("pt2e-int8", 0.895, 60, 6.0, 2.0),
    )
    main, picks = picks_of([baseline, trial], baseline)
    assert picks[1].choice is main
    assert picks[1].passed[0][1] == "not faster than the shipped file (pt2e-int8) here beyond the tie floor"


def test_among_faster_forms_ties_go_by_the_tie_break_and_barely_faster_ones_do_not_count(
    baseline, forms_row, make_form
):
    main_form = make_form("pt2e-int8", 0.895, 60, 9.0, batch1=8.9)
    big = make_form("onnxruntime-fp32", 0.895, 160, 3.0, batch1=10.0)
    small = make_form("onnxruntime-int8", 0.895, 50, 3.0, batch1=9.1)  # 8.9 >= 90% of 9.1: not a rival
    main, picks = picks_of([baseline, forms_row("structured", 0.9, main_form, big, small)], baseline)
    assert main.runtime == "pt2e-int8" and picks[1].choice.runtime == "onnxruntime-fp32"
    # both clearly faster than the shipped file and tied with each other: the smaller file
    small["speed"]["1"]["speedup"] = 9.5
    main_form["speed"]["1"]["speedup"] = 2.0
    main, picks = picks_of([baseline, forms_row("structured", 0.9, main_form, big, small)], baseline)
    assert picks[1].choice.runtime == "onnxruntime-int8"
    assert dict((c.runtime, why) for c, why in picks[1].passed)["onnxruntime-fp32"] == (
        "tied with or slower than onnxruntime-int8 here (ties as for the shipped file)"
    )


def test_objective_size_ships_one_file_for_every_batch(baseline, trial_of):
    trial = trial_of(
        ("onnxruntime-int8", 0.895, 50, 3.2, 18.0),
        ("pt2e-int8", 0.895, 40, 6.0, 2.0),
    )
    main, picks = picks_of([baseline, trial], baseline, "size")
    assert main.runtime == "pt2e-int8" and all(
        pick.choice is main and not pick.passed for pick in picks.values()
    )
