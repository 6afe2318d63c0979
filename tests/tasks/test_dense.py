"""FlowTask / DenseRegressionTask: EPE and KITTI outliers by hand, masks, losses, pyramids, checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from prunequant.errors import ConfigError, ModelError
from prunequant.tasks import DenseRegressionTask, FlowTask, build_task, endpoint_error, is_outlier


def flow_pair():
    """Two 1x2 flow fields with errors chosen by hand: (3,4) -> 5 px, (0,1) -> 1 px."""
    target = torch.tensor([[[[10.0, 0.0]], [[0.0, 2.0]]]])  # [1, 2, 1, 2]: vectors (10, 0) and (0, 2)
    prediction = target + torch.tensor([[[[3.0, 0.0]], [[4.0, 1.0]]]])
    return prediction, target


def test_endpoint_error_and_outliers_by_hand():
    prediction, target = flow_pair()
    error = endpoint_error(prediction, target)
    assert error.tolist() == [[[5.0, 1.0]]]
    # pixel 0: 5 > 3 and 5 > 0.05 * 10 -> outlier; pixel 1: 1 <= 3 -> not
    assert is_outlier(error, target).tolist() == [[[True, False]]]
    # relative part: 5 px error on a 200 px vector is 2.5 % -> not an outlier
    assert not bool(is_outlier(torch.tensor([[[5.0]]]), torch.tensor([[[[200.0]], [[0.0]]]])).any())


def test_metrics_pool_valid_pixels_over_batches():
    gen = torch.Generator().manual_seed(1)
    target = 4 * torch.randn(3, 2, 4, 5, generator=gen)
    prediction = target + 3 * torch.randn(3, 2, 4, 5, generator=gen)
    valid = torch.rand(3, 4, 5, generator=gen) > 0.3
    state = FlowTask().metric_state()
    state.update(prediction[:1], (target[:1], valid[:1]))
    state.update(prediction[1:], {"flow": target[1:], "valid": valid[1:].float()[:, None]})
    errors, outliers = [], 0
    for b in range(3):
        for i in range(4):
            for j in range(5):
                if valid[b, i, j]:
                    du, dv = (prediction[b, :, i, j] - target[b, :, i, j]).tolist()
                    e = math.hypot(du, dv)
                    errors.append(e)
                    outliers += e > 3 and e > 0.05 * math.hypot(*target[b, :, i, j].tolist())
    result = state.compute()
    assert result["epe"] == pytest.approx(sum(errors) / len(errors), rel=1e-6)
    assert result["outlier_rate"] == pytest.approx(outliers / len(errors))


def test_non_finite_target_pixels_are_invalid():
    prediction, target = flow_pair()
    target = target.clone()
    target[0, 0, 0, 0] = float("nan")
    state = FlowTask().metric_state()
    state.update(prediction, target)
    assert state.compute() == {"epe": 1.0, "outlier_rate": 0.0}
    assert math.isfinite(float(FlowTask(loss="epe").loss(prediction, target)))


@pytest.mark.parametrize(("kind", "expected"), [("l1", (3 + 4 + 0 + 1) / 4), ("l2", (9 + 16 + 0 + 1) / 4),
                                                ("epe", (5 + 1) / 2)])
def test_losses_by_hand(kind, expected):
    prediction, target = flow_pair()
    assert float(FlowTask(loss=kind).loss(prediction, target)) == pytest.approx(expected)


def test_loss_counts_only_valid_pixels_and_has_gradients():
    prediction, target = flow_pair()
    prediction.requires_grad_(True)
    loss = FlowTask(loss="epe").loss(prediction, (target, torch.tensor([[[False, True]]])))
    assert float(loss.detach()) == pytest.approx(1.0)
    loss.backward()
    assert prediction.grad[..., 0].abs().sum() == 0 and prediction.grad[..., 1].abs().sum() > 0


def test_pyramid_scores_output_index_and_multiscale_loss_rescales_flow():
    target = torch.ones(1, 2, 4, 8) * torch.tensor([4.0, 2.0])[None, :, None, None]
    full = target.clone()
    coarse = torch.ones(1, 2, 2, 4) * torch.tensor([2.0, 1.0])[None, :, None, None]  # half size, half flow
    task = FlowTask(loss="epe", multiscale_weights=[1.0, 0.5])
    assert float(task.loss((full, coarse), target)) == pytest.approx(0.0, abs=1e-6)
    wrong = coarse * 2  # not rescaled: error (2, 1) per coarse pixel, weighted 0.5
    assert float(task.loss((full, wrong), target)) == pytest.approx(0.5 * math.sqrt(5), rel=1e-5)
    state = FlowTask(output_index=1).metric_state()
    with pytest.raises(ModelError, match="Tensor\\[1, 2, 2, 4\\]"):
        state.update((full, coarse), target)
    everywhere = torch.ones(1, 4, 8, dtype=torch.bool)
    resized, valid = DenseRegressionTask().resize_target(target, everywhere, (2, 4))
    assert torch.allclose(resized, target[:, :, :2, :4]) and bool(valid.all())  # plain regression: no scaling


def test_multiscale_sparse_target_uses_nearest_and_the_mask():
    target = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(1, 2, 1, 1)
    valid = torch.zeros(1, 4, 4, dtype=torch.bool)
    valid[0, ::2, ::2] = True
    resized, mask = FlowTask().resize_target(target, valid, (2, 2))
    assert mask.all() and resized[0, 0].tolist() == [[0.0, 1.0], [4.0, 5.0]]  # x scaled by 2/4
    assert resized[0, 1].tolist() == [[0.0, 1.0], [4.0, 5.0]]


def test_multiscale_weights_must_match_the_outputs():
    task = FlowTask(multiscale_weights=[1.0, 0.5, 0.25])
    target = torch.zeros(1, 2, 4, 4)
    with pytest.raises(ModelError, match="3 outputs"):
        task.loss((torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 2, 2)), target)
    with pytest.raises(ConfigError, match="multiscale_weights"):
        FlowTask(multiscale_weights=[-1.0])
    with pytest.raises(ConfigError, match="loss"):
        FlowTask(loss="huber")


@pytest.mark.parametrize(
    ("outputs", "target", "words"),
    [
        (torch.randn(4, 10), torch.zeros(4, 2, 8, 8), ["Tensor[4, 10]", "Tensor[4, 2, 8, 8]"]),
        (torch.randn(4, 3, 8, 8), torch.zeros(4, 3, 8, 8), ["[batch, 2, H, W]", "Tensor[4, 3, 8, 8]"]),
        (torch.randn(4, 2, 8, 8), torch.zeros(4, 2, 4, 4), ["target's shape", "Tensor[4, 2, 4, 4]"]),
        (torch.randn(4, 2, 8, 8), torch.zeros(4, dtype=torch.long), ["float target", "Tensor[4]"]),
        (torch.randn(4, 2, 8, 8), (torch.zeros(4, 2, 8, 8), torch.ones(4, 4, 4)), ["valid mask"]),
    ],
)
def test_check_names_outputs_and_target(refused, outputs, target, words):
    refused(lambda: FlowTask().check(outputs, target), "flow", words)


def test_regression_takes_any_channel_count():
    task = build_task("regression", loss="l2")
    assert isinstance(task, DenseRegressionTask) and not isinstance(task, FlowTask)
    prediction, target = torch.zeros(2, 3, 2, 2), torch.ones(2, 3, 2, 2)
    task.check(prediction, target)
    state = task.metric_state()
    state.update(prediction, target)
    assert state.compute()["epe"] == pytest.approx(math.sqrt(3))
    assert task.metric().unit == "" and build_task("flow").metric().unit == "px"
    assert not task.metric().higher_is_better and not task.metric("outlier_rate").higher_is_better


class TwoInputFlow(nn.Module):
    """Image + sparse depth -> flow, like DeepLiDARFlow in miniature."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Conv2d(3, 8, 3, padding=1)
        self.depth = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.image(image) + self.depth(depth)))


def test_two_input_flow_model_learns(fit):
    torch.manual_seed(0)
    images, depth = torch.randn(16, 3, 6, 6), torch.randn(16, 1, 6, 6)
    flow = torch.cat([images[:, :1] * 2, depth], dim=1)
    loader = DataLoader(TensorDataset(images, depth, flow), batch_size=8)
    before, after = fit(TwoInputFlow(), loader, build_task("flow", loss="epe"), epochs=16, lr=0.03)
    assert after.primary == "epe" and after.score < 0.5 * before.score
