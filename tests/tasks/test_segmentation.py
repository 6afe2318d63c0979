"""SegmentationTask: mIoU and pixel accuracy against hand counts, ignore_index, checks, a tiny segmenter."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from prunequant.errors import ConfigError, ModelError
from prunequant.tasks import SegmentationTask, build_task


def one_hot_logits(predicted: torch.Tensor, classes: int) -> torch.Tensor:
    return F.one_hot(predicted, classes).permute(0, 3, 1, 2).float()


def hand_scores(predicted, target, classes, ignore=255):
    keep = target != ignore
    p, t = predicted[keep], target[keep]
    ious = []
    for c in range(classes):
        union = int(((p == c) | (t == c)).sum())
        if union:
            ious.append(int(((p == c) & (t == c)).sum()) / union)
    return sum(ious) / len(ious), float((p == t).float().mean())


def test_miou_and_pixel_accuracy_match_hand_counts():
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 4, (3, 6, 5), generator=gen)
    target[0, :2] = 255
    predicted = torch.where(torch.rand(3, 6, 5, generator=gen) < 0.7, target.clamp(max=3),
                            torch.randint(0, 4, (3, 6, 5), generator=gen))
    task = SegmentationTask()
    state = task.metric_state()
    state.update(one_hot_logits(predicted[:2], 4), target[:2])
    state.update(one_hot_logits(predicted[2:], 4), target[2:])
    miou, accuracy = hand_scores(predicted, target, 4)
    result = state.compute()
    assert result["miou"] == pytest.approx(miou, abs=1e-6)
    assert result["pixel_acc"] == pytest.approx(accuracy, abs=1e-6)


def test_known_small_case_and_absent_class_left_out():
    target = torch.tensor([[[0, 0], [1, 255]]])
    predicted = torch.tensor([[[0, 1], [1, 2]]])  # the ignored pixel's prediction does not count
    state = SegmentationTask().metric_state()
    state.update(one_hot_logits(predicted, 3), target)
    result = state.compute()
    assert result["miou"] == pytest.approx(0.5)  # class 0: 1/2, class 1: 1/2, class 2 absent
    assert result["pixel_acc"] == pytest.approx(2 / 3)


def test_loss_ignores_ignore_index_pixels():
    task = SegmentationTask(ignore_index=7)
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    target[:, 0] = 7
    changed = logits.clone()
    changed[:, :, 0] = 100 * torch.randn(2, 3, 4)
    keep = target != 7
    expected = F.cross_entropy(logits.permute(0, 2, 3, 1)[keep], target[keep])
    assert task.loss(logits, target) == pytest.approx(float(expected), rel=1e-5)
    assert task.loss(changed, target) == pytest.approx(float(expected), rel=1e-5)


def test_output_index_scores_the_chosen_head():
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    good, bad = one_hot_logits(target, 2), one_hot_logits(torch.ones_like(target), 2)
    state = SegmentationTask(output_index=1).metric_state()
    state.update((bad, good), target)
    assert state.compute()["pixel_acc"] == 1.0


@pytest.mark.parametrize(
    ("outputs", "target", "words"),
    [
        (torch.randn(4, 3), torch.zeros(4, dtype=torch.long), ["Tensor[4, 3]", "Tensor[4]", "H, W"]),
        (torch.randn(2, 3, 4, 4), torch.zeros(2, 5, 5, dtype=torch.long),
         ["Tensor[2, 3, 4, 4]", "Tensor[2, 5, 5]"]),
        (torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 4), ["integer class map"]),
        ((torch.randn(2, 3),), torch.zeros(2, 4, 4, dtype=torch.long), ["tuple(Tensor[2, 3])"]),
    ],
)
def test_check_names_outputs_and_target(refused, outputs, target, words):
    refused(lambda: SegmentationTask().check(outputs, target), "segmentation", words)


def test_class_out_of_range_is_one_clear_line():
    target = torch.full((1, 2, 2), 4)
    with pytest.raises(ModelError, match="class is 4 but the model has 3 classes"):
        SegmentationTask().check(torch.randn(1, 3, 2, 2), target)


def test_bad_options():
    with pytest.raises(ConfigError, match="ignore_index"):
        SegmentationTask(ignore_index="x")
    with pytest.raises(ConfigError, match="output_index"):
        SegmentationTask(output_index=1.5)


def test_class_weights_reach_the_loss():
    logits, target = torch.randn(2, 2, 3, 3), torch.randint(0, 2, (2, 3, 3))
    task = SegmentationTask(class_weights=[1.0, 3.0])
    expected = F.cross_entropy(logits, target, weight=torch.tensor([1.0, 3.0]))
    assert task.loss(logits, target) == pytest.approx(float(expected), rel=1e-5)


class TinySegmenter(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_tiny_segmenter_learns_and_evaluates(fit):
    torch.manual_seed(0)
    target = torch.randint(0, 3, (16, 8, 8))
    images = target[:, None].float() + 0.1 * torch.randn(16, 1, 8, 8)
    loader = DataLoader(TensorDataset(images, target), batch_size=8)
    before, after = fit(TinySegmenter(), loader, build_task("segmentation"), epochs=10, lr=0.05)
    assert after.primary == "miou" and after.score > before.score + 0.5
    assert after.loss < before.loss
