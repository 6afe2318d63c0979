"""Choosing the deployable form to ship: fastest within budget, ties within the spread, nothing in budget."""

from prunequant.lab.budget import Budget
from prunequant.lab.select import best_choice, closest_choice, deployable, fastest_choice
from prunequant.tasks import default_task


def top1(max_drop: float) -> Budget:
    return Budget(default_task().metric("top1"), max_drop)


def test_the_fastest_form_within_budget_wins_whatever_its_trial_scores(make_row, forms_row, make_form):
    baseline = forms_row("profile", 0.90, make_form("onnxruntime-int8", 0.895, 180, 3.0))
    rows = [
        baseline,
        forms_row("structured", 0.90, make_form("onnxruntime-fp32", 0.89, 160, 7.0)),
        fast_bad := forms_row("structured", 0.90, make_form("onnxruntime-int8", 0.85, 60, 20.0)),
        winner := forms_row("aware_quant", 0.91, make_form("onnxruntime-int8", 0.885, 60, 9.0)),
        make_row("post_prune", 0.95, extra={"deploy": {"batch": 64, "forms": [], "no_speed_gain": "x"}}),
    ]
    choice = best_choice(rows, baseline, top1(0.02), "latency")
    assert (choice.row, choice.runtime) == (winner, "onnxruntime-int8")  # the file's val, not the trial's
    assert (
        choice.speed(1)["speedup"] == 18.0
        and choice.artifact == f"artifacts/{winner.trial_id}/model.onnxruntime-int8.onnx"
    )
    assert fastest_choice(rows).row is fast_bad
    size = best_choice(rows, baseline, top1(0.02), "size")
    assert size.row is winner and size.form["bytes"] == 60


def test_masked_and_failed_forms_are_not_deployable(make_row, forms_row, make_form):
    failed = {"runtime": "onnxruntime-int8", "file": "m.onnx", "error": "ExportError: unsupported op"}
    rows = [
        make_row("post_prune", 0.9, extra={"deploy": {"batch": 64, "forms": [], "no_speed_gain": "x"}}),
        forms_row("structured", 0.9, failed),
        make_row("export", 0.9, extra={"deploy": {"batch": 64, "forms": [make_form("x", 0.9, 1, 99.0)]}}),
    ]
    assert deployable(rows) == []


def test_ties_within_the_spread_break_by_file_size_then_score_then_trial_id(make_row, forms_row, make_form):
    baseline = make_row("profile", 0.90)
    a = forms_row("structured", 0.9, make_form("onnxruntime-fp32", 0.90, 160, 7.05, spread=0.5))
    b = forms_row("structured", 0.9, make_form("onnxruntime-int8", 0.89, 60, 6.80, spread=0.5))
    far = forms_row("aware_quant", 0.9, make_form("onnxruntime-int8", 0.90, 50, 4.0, spread=0.5))
    budget = top1(0.02)
    # b is slower by run-to-run drift only (96% of a's speedup): the smaller file wins, in any order
    assert best_choice([a, b, far], baseline, budget, "latency").row is b
    assert best_choice([far, b, a], baseline, budget, "latency").row is b
    # re-measured a little differently, the pick does not move
    a2 = forms_row("structured", 0.9, make_form("onnxruntime-fp32", 0.90, 160, 6.7, spread=0.5))
    assert best_choice([a2, b, far], baseline, budget, "latency").row is b
    # equal size: the better validation score, then the trial id
    c = forms_row("structured", 0.9, make_form("onnxruntime-int8", 0.895, 60, 6.9, spread=0.5))
    assert best_choice([a, b, c], baseline, budget, "latency").row is c
    d = forms_row("structured", 0.9, make_form("onnxruntime-int8", 0.895, 60, 6.9, spread=0.5))
    assert best_choice([d, c, a], baseline, budget, "latency").row is c  # "t.." ids: c's is smaller
    # a noisy fastest form does not make a much slower one its equal (the tie floor: 90% of its median)
    noisy = forms_row("structured", 0.9, make_form("onnxruntime-int8", 0.90, 300, 4.9, spread=1.5))
    slower = forms_row("structured", 0.9, make_form("onnxruntime-int8", 0.90, 100, 3.6, spread=0.2))
    assert best_choice([noisy, slower], baseline, budget, "latency").row is noisy
    # narrow spreads that do not overlap still tie within 10% (two idle demo runs moved a file by 8%)
    tight = forms_row("structured", 0.9, make_form("onnxruntime-int8", 0.90, 300, 8.81, spread=0.05))
    small = forms_row("structured", 0.9, make_form("onnxruntime-int8", 0.90, 200, 8.58, spread=0.05))
    assert best_choice([tight, small], baseline, budget, "latency").row is small
    # more than 10% faster: speed decides
    clear = forms_row("structured", 0.9, make_form("onnxruntime-fp32", 0.90, 160, 9.0, spread=0.2))
    assert best_choice([clear, b, c], baseline, budget, "latency").row is clear


def test_nothing_in_budget_gives_the_closest_form_and_its_miss(make_row, forms_row, make_form):
    baseline = make_row("profile", 0.90)
    rows = [
        forms_row("structured", 0.9, make_form("onnxruntime-int8", 0.85, 60, 9.0)),
        near := forms_row("structured", 0.9, make_form("onnxruntime-fp32", 0.875, 160, 5.0)),
    ]
    assert best_choice(rows, baseline, top1(0.01), "latency") is None
    choice, missed = closest_choice(rows, baseline, top1(0.01))
    assert choice.row is near and abs(missed - 0.015) < 1e-9
    assert closest_choice([], baseline, top1(0.01)) is None
