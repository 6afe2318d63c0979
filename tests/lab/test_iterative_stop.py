"""When the iterative stage stops: target (MACs and/or speedup), broken budget, no progress, failure."""

from types import SimpleNamespace

import pytest

from prunequant.lab.budget import Budget
from prunequant.lab.iterative import _stop_reason, target_reached
from prunequant.lab.recovery_sections import IterativeSection
from prunequant.tasks import ClassificationTask


@pytest.fixture
def session(make_row):
    baseline = make_row("profile", 0.90, macs=1000)
    budget = Budget(ClassificationTask().metric("top1"), 0.02, False)
    return SimpleNamespace(baseline=lambda: baseline, budget=budget)


def _step(make_row, index, val_score, macs, reduction, speedup=1.0, status="done"):
    config = {"step": index}
    extra = {"macs_reduction": reduction}
    return make_row(
        "iterative", val_score, status=status, config=config, extra=extra, macs=macs, speedup=speedup
    )


def test_both_targets_must_be_met_when_both_are_set(make_row):
    both = IterativeSection(target_macs_reduction=0.5, target_speedup=2.0)
    assert not target_reached(_step(make_row, 1, 0.9, 400, 0.6, speedup=1.5), both)
    assert target_reached(_step(make_row, 1, 0.9, 400, 0.6, speedup=2.5), both)
    speed_only = IterativeSection(target_speedup=2.0)
    assert target_reached(_step(make_row, 1, 0.9, 900, 0.1, speedup=2.0), speed_only)


def test_stop_reasons_in_order(make_row, session):
    section = IterativeSection(target_macs_reduction=0.5)
    previous = session.baseline()
    assert _stop_reason(_step(make_row, 1, 0.89, 800, 0.2), previous, session, section) is None
    broke = _stop_reason(_step(make_row, 2, 0.85, 400, 0.6), previous, session, section)
    assert broke.startswith("step 2 broke the accuracy budget")  # before the target is looked at
    reached = _stop_reason(_step(make_row, 3, 0.89, 400, 0.6), previous, session, section)
    assert reached == "target reached at step 3"
    stuck = _stop_reason(_step(make_row, 4, 0.89, 1000, 0.0), previous, session, section)
    assert stuck == "step 4 removed nothing more"
    failed = _step(make_row, 5, None, None, 0.0, status="failed")
    assert _stop_reason(failed, previous, session, section).startswith("step 5 failed")
