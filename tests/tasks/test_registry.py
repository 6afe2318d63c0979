"""Registry: every built-in task by name, options, unknown names, duplicates, resolve_callable."""

from __future__ import annotations

import pytest

from prunequant.errors import ConfigError
from prunequant.tasks import (
    ClassificationTask,
    DenseRegressionTask,
    FlowTask,
    ReconstructionTask,
    SegmentationTask,
    VAETask,
    available_tasks,
    build_task,
    default_task,
    register_task,
    resolve_callable,
)


@pytest.mark.parametrize(
    ("name", "cls", "primary", "higher"),
    [
        ("classification", ClassificationTask, "top1", True),
        ("segmentation", SegmentationTask, "miou", True),
        ("flow", FlowTask, "epe", False),
        ("regression", DenseRegressionTask, "epe", False),
        ("reconstruction", ReconstructionTask, "mse", False),
        ("vae", VAETask, "elbo", True),
    ],
)
def test_builtin_tasks_by_name(name, cls, primary, higher):
    task = build_task(name)
    assert type(task) is cls and task.name == name and task.primary == primary
    assert task.primary_metric.higher_is_better is higher


def test_available_and_default():
    builtin = {"classification", "segmentation", "flow", "regression", "reconstruction", "vae", "detection"}
    assert builtin <= set(available_tasks())
    assert type(default_task()) is ClassificationTask and build_task().name == "classification"


def test_options_unknown_names_and_duplicates():
    assert build_task("segmentation", ignore_index=0).ignore_index == 0
    with pytest.raises(ConfigError, match="does not take these options"):
        build_task("flow", ignore_index=3)
    with pytest.raises(ConfigError, match="unknown task 'segmantation'; did you mean 'segmentation'"):
        build_task("segmantation")
    with pytest.raises(ConfigError, match="already registered"):
        register_task("flow")(FlowTask)


def test_resolve_callable():
    assert resolve_callable(len) is len
    assert resolve_callable("os.path:join").__name__ == "join"
    assert resolve_callable("prunequant.tasks:FlowTask.resize_target") is FlowTask.resize_target
    with pytest.raises(ConfigError, match="decode function must be a callable or 'package.module:name'"):
        resolve_callable("os.path", "decode function")
    with pytest.raises(ConfigError, match="'sep' in 'os' is not a callable loss"):
        resolve_callable("os:sep", "loss")
