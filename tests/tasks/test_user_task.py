"""User tasks: a duck-typed class (no Task subclass) built from 'module:factory' and used by evaluate."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from prunequant.errors import ConfigError
from prunequant.tasks import Task, build_task
from prunequant.training.evaluate import evaluate


@pytest.fixture(autouse=True)
def tests_dir_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))


def test_module_factory_with_options_builds_a_duck_typed_task():
    task = build_task("user_task_module:make_task", scale=2.0)
    assert not isinstance(task, Task) and task.name == "user_mae" and task.scale == 2.0
    assert build_task("user_task_module:MeanAbsoluteErrorTask").scale == 1.0  # a class is a factory too


def test_user_task_drives_evaluate():
    x = torch.randn(8, 3)
    loader = DataLoader(TensorDataset(x, x + 1.0), batch_size=4)
    model = nn.Identity()
    result = evaluate(model, loader, build_task("user_task_module:make_task", scale=2.0))
    assert result.primary == "mae" and result.score == pytest.approx(2.0)
    assert result.loss == pytest.approx(2.0)


def test_a_user_object_is_accepted_as_is():
    import user_task_module

    task = user_task_module.MeanAbsoluteErrorTask(3.0)
    assert build_task(task) is task


@pytest.mark.parametrize(
    ("spec", "options", "words"),
    [
        ("user_task_module:Incomplete", {}, "lacks loss, metric_state"),
        ("user_task_module:make_task", {"bogus": 1}, "does not take these options"),
        ("user_task_module:NOT_CALLABLE", {}, "is not a callable task factory"),
        ("user_task_module:missing", {}, "is not a callable task factory"),
        ("no_such_user_module:make_task", {}, "cannot import 'no_such_user_module'"),
    ],
)
def test_bad_user_tasks_are_one_config_error(spec, options, words):
    with pytest.raises(ConfigError, match=words) as info:
        build_task(spec, **options)
    assert "\n" not in str(info.value)
