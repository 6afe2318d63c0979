"""Data-driven importance, BN recalibration and sensitivity on a two-input regressor with its own task.

The channel groups are written out by hand here: tracing several inputs is the dependency graph's job,
tested with it; these tests cover how batches, loss and metric reach the criteria.
"""

from __future__ import annotations

import copy

import pytest
import torch

from prunequant.pruning.structured import (
    ImportanceContext,
    SensitivityTable,
    amounts_from_table,
    recalibrate_bn,
    sensitivity_scan,
)
from prunequant.pruning.structured.groups import IN, OUT, ChannelGroup, Member
from prunequant.pruning.structured.importance import group_scores
from prunequant.pruning.structured.rewrite import remove_channels_
from prunequant.tasks import MetricSpec
from prunequant.training import TrainConfig, Trainer, evaluate


def flow_groups() -> list[ChannelGroup]:
    """The image branch, the depth branch (both read by `fuse` through the concat) and the fused layer."""

    def group(name: str, channels: int, bn: str, reader: str, offset: int = 0) -> ChannelGroup:
        return ChannelGroup(name, channels, [Member(name, OUT), Member(bn, OUT), Member(reader, IN, offset)])

    return [
        group("image_conv", 8, "image_bn", "fuse"),
        group("depth_conv", 4, "depth_bn", "fuse", offset=8),
        group("fuse", 8, "fuse_bn", "head"),
    ]


def dict_batches(loader, count: int) -> list[dict[str, torch.Tensor]]:
    """The first `count` batches as dicts: the task feeds the inputs to the model as keyword arguments."""
    batches = []
    for image, depth, target in loader:
        batches.append({"image": image, "depth": depth, "target": target})
        if len(batches) == count:
            return batches
    return batches


def depth_activations(model, batch) -> torch.Tensor:
    """What `fuse` reads from the depth branch (its input channels 8..11), by hand."""
    return torch.relu(model.depth_bn(model.depth_conv(batch["depth"])))


def normalized(values: torch.Tensor) -> torch.Tensor:
    values = values.double()
    return values / values.mean()


def test_activation_l1_reads_both_inputs(two_input_model, flow_loaders, regression_task):
    model = two_input_model.eval()
    batches = dict_batches(flow_loaders[1], 2)
    context = ImportanceContext(model, flow_groups(), batches, calib_batches=2, task=regression_task)
    scores = group_scores("activation_l1", flow_groups()[1], context)
    with torch.no_grad():
        means = [depth_activations(model, b).abs().mean((0, 2, 3)) for b in batches]
    torch.testing.assert_close(scores, normalized(torch.stack(means).mean(0)))


def test_taylor_backpropagates_the_task_loss(two_input_model, flow_loaders, regression_task):
    model = two_input_model.eval()
    batch = dict_batches(flow_loaders[1], 1)
    context = ImportanceContext(model, flow_groups(), batch, calib_batches=1, task=regression_task)
    scores = group_scores("taylor", flow_groups()[1], context)
    reference = copy.deepcopy(model)
    depth = depth_activations(reference, batch[0]).detach().requires_grad_()
    image = torch.relu(reference.image_bn(reference.image_conv(batch[0]["image"])))
    fused = torch.relu(reference.fuse_bn(reference.fuse(torch.cat([image, depth], 1))))
    torch.nn.functional.mse_loss(reference.head(fused), batch[0]["target"]).backward()
    expected = (depth * depth.grad).sum((2, 3)).abs().mean(0)
    torch.testing.assert_close(scores, normalized(expected.detach()))
    assert all(p.grad is None for p in model.parameters())


def test_recalibrate_bn_feeds_every_input(two_input_model, flow_loaders, regression_task):
    model = two_input_model
    batches = list(flow_loaders[1])
    recalibrate_bn(model, batches, max_batches=2, task=regression_task)
    with torch.no_grad():
        outputs = [model.depth_conv(depth) for _, depth, _ in batches]
    expected = torch.stack([o.mean((0, 2, 3)) for o in outputs]).mean(0)
    torch.testing.assert_close(model.depth_bn.running_mean, expected)
    assert model.depth_bn.num_batches_tracked == 2 and not model.training


def test_sensitivity_scores_with_the_task_metric(two_input_model, flow_loaders, regression_task):
    train, val = flow_loaders
    config = TrainConfig(epochs=3, lr=0.02, optimizer="adam", weight_decay=0.0)
    Trainer(two_input_model, train, val, config, task=regression_task).fit()
    example = (torch.randn(2, 3, 8, 8), torch.randn(2, 1, 8, 8))
    groups = flow_groups()
    table = sensitivity_scan(
        two_input_model, example, val, amounts=(0.5,), groups=groups, task=regression_task
    )
    assert table.metric.name == "mse" and not table.metric.higher_is_better
    assert table.baseline == pytest.approx(evaluate(two_input_model, val, regression_task).mse)
    context = ImportanceContext(two_input_model, groups, val, task=regression_task)
    pruned = copy.deepcopy(two_input_model)
    weakest = group_scores("l1", groups[2], context).argsort()[:4].tolist()
    remove_channels_(pruned, [groups[2]], {"fuse": weakest})
    assert table.scores["fuse"] == (pytest.approx(evaluate(pruned, val, regression_task).mse),)
    assert table.scores["fuse"][0] > table.baseline  # half the fused channels gone: a larger error
    assert "mse @ 50%" in table.markdown() and table.to_dict()["higher_is_better"] is False


def test_amounts_from_a_lower_is_better_table():
    error = MetricSpec("epe", "px", False)
    table = SensitivityTable(
        amounts=(0.25, 0.5, 0.75),
        baseline=1.0,
        scores={"a": (1.0, 1.02, 1.5), "b": (1.05, 1.4, 1.6)},
        channels={"a": 16, "b": 16},
        metric=error,
    )
    assert amounts_from_table(table, 0.25) == {"a": 0.5, "b": 0.0}  # a 0.02 px rise suffices
    assert amounts_from_table(table, 0.375) == {"a": 0.5, "b": 0.25}  # needs b's 0.05 px rise
