"""Tasks: what a batch, a loss, a metric and an output comparison are, for any CNN.

Low in the stack: training, pruning, quantization, export, the lab and the report import it; it imports
only errors and validation.
"""

from prunequant.tasks.base import BatchTransform, Comparison, MetricState, Task, mismatch
from prunequant.tasks.classification import ClassificationTask
from prunequant.tasks.compare import OutputComparison
from prunequant.tasks.dense import DenseRegressionTask, FlowTask, endpoint_error, is_outlier
from prunequant.tasks.detection import DetectionTask, collate_detection
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
from prunequant.tasks.reconstruction import InputTargetTask, ReconstructionTask
from prunequant.tasks.registry import available_tasks, build_task, register_task, resolve_callable
from prunequant.tasks.segmentation import SegmentationTask
from prunequant.tasks.transform import with_transform
from prunequant.tasks.vae import VAETask, kl_divergence

register_task("classification")(ClassificationTask)
register_task("segmentation")(SegmentationTask)
register_task("regression")(DenseRegressionTask)
register_task("flow")(FlowTask)
register_task("reconstruction")(ReconstructionTask)
register_task("vae")(VAETask)
register_task("detection")(DetectionTask)


def default_task() -> Task:
    """The task used when none is given: classification, so classifier code keeps working unchanged."""
    return ClassificationTask()


__all__ = [
    "BatchTransform",
    "ClassificationTask",
    "Comparison",
    "DenseRegressionTask",
    "DetectionTask",
    "FlowTask",
    "InputTargetTask",
    "Inputs",
    "MetricSpec",
    "MetricState",
    "OutputComparison",
    "Outputs",
    "ReconstructionTask",
    "SegmentationTask",
    "Task",
    "VAETask",
    "as_args",
    "available_tasks",
    "batch_size_of",
    "build_task",
    "collate_detection",
    "default_task",
    "describe",
    "endpoint_error",
    "flatten_outputs",
    "input_names",
    "is_outlier",
    "kl_divergence",
    "mismatch",
    "output_names",
    "register_task",
    "resolve_callable",
    "run_model",
    "to_device",
    "with_transform",
]
