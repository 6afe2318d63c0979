"""Tasks: what a batch, a loss, a metric and an output comparison are, for any CNN.

Low in the stack: training, pruning, quantization, export, the lab and the report import it; it imports
only errors and validation.
"""

from prunequant.tasks.base import BatchTransform, Comparison, MetricState, Task, mismatch
from prunequant.tasks.classification import ClassificationTask
from prunequant.tasks.compare import OutputComparison
from prunequant.tasks.io import (
    Inputs,
    Outputs,
    as_args,
    batch_size_of,
    describe,
    flatten_outputs,
    input_names,
    output_names,
    run_model,
    to_device,
)
from prunequant.tasks.metric import MetricSpec
from prunequant.tasks.registry import available_tasks, build_task, register_task

register_task("classification")(ClassificationTask)


def default_task() -> Task:
    """The task used when none is given: classification, so classifier code keeps working unchanged."""
    return ClassificationTask()


__all__ = [
    "BatchTransform",
    "ClassificationTask",
    "Comparison",
    "Inputs",
    "MetricSpec",
    "MetricState",
    "OutputComparison",
    "Outputs",
    "Task",
    "as_args",
    "available_tasks",
    "batch_size_of",
    "build_task",
    "default_task",
    "describe",
    "flatten_outputs",
    "input_names",
    "mismatch",
    "output_names",
    "register_task",
    "run_model",
    "to_device",
]
