"""Shared helpers for the task tests: a short training loop, and the one-line ModelError assertion."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
import torch

from prunequant.errors import ModelError
from prunequant.tasks import run_model
from prunequant.training.evaluate import EvalResult, evaluate


def fit_and_score(model: torch.nn.Module, loader: Iterable, task: Any, epochs: int, lr: float):
    """Score, train `epochs` with Adam through task.split/loss, score again: (before, after) EvalResults."""
    before: EvalResult = evaluate(model, loader, task)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for batch in loader:
            inputs, target = task.split(batch)
            optimizer.zero_grad()
            task.loss(run_model(model, inputs), target).backward()
            optimizer.step()
    return before, evaluate(model, loader, task)


def assert_refused(call: Callable[[], Any], task_name: str, words: Iterable[str]) -> str:
    """`call()` raises a one-line ModelError that names the task and contains every word; returns it."""
    with pytest.raises(ModelError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and f"'{task_name}'" in message
    for word in words:
        assert word in message, (word, message)
    return message


@pytest.fixture
def fit():
    return fit_and_score


@pytest.fixture
def refused():
    return assert_refused
