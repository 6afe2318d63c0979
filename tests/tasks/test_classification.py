"""ClassificationTask: top-1/top-5 by hand, label smoothing, agreement comparison, checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from prunequant.errors import ConfigError, ModelError
from prunequant.tasks import ClassificationTask


def test_top1_top5_exact_over_batches():
    gen = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(30, 7, generator=gen), torch.randint(0, 7, (30,), generator=gen)
    state = ClassificationTask().metric_state()
    state.update(logits[:13], labels[:13])
    state.update(logits[13:], labels[13:])
    top1 = int((logits.argmax(1) == labels).sum()) / 30
    top5 = int((logits.topk(5, 1).indices == labels[:, None]).any(1).sum()) / 30
    assert state.compute() == {"top1": top1, "top5": top5}


def test_top5_clamped_for_few_classes_and_empty():
    state = ClassificationTask().metric_state()
    state.update(torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([0]))
    assert state.compute() == {"top1": 0.0, "top5": 1.0}
    assert all(v != v for v in ClassificationTask().metric_state().compute().values())  # NaN


def test_loss_with_label_smoothing():
    logits, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    task = ClassificationTask(label_smoothing=0.1)
    expected = F.cross_entropy(logits, labels, label_smoothing=0.1)
    assert float(task.loss(logits, labels)) == pytest.approx(float(expected))
    with pytest.raises(ConfigError, match="label_smoothing"):
        ClassificationTask(label_smoothing=1.0)


def test_agreement_comparison():
    comparison = ClassificationTask().comparison()
    ref = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    comparison.update(ref, torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    result = comparison.compute()
    assert result["agreement"] == 0.75 and result["max_abs_diff"] == 1.0


@pytest.mark.parametrize(
    ("outputs", "target", "words"),
    [
        (torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long),
         ["Tensor[2, 3, 4, 4]", "Tensor[2, 4, 4]"]),
        ((torch.randn(2, 3), torch.randn(2, 3)), torch.zeros(2, dtype=torch.long), ["tuple("]),
        (torch.randn(2, 3), torch.zeros(2, 3), ["integer class labels"]),
    ],
)
def test_check_names_outputs_and_target(outputs, target, words):
    with pytest.raises(ModelError) as info:
        ClassificationTask().check(outputs, target)
    assert "\n" not in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_label_beyond_classes():
    with pytest.raises(ModelError, match="a label is 5 but the model has only 3 classes"):
        ClassificationTask().check(torch.randn(2, 3), torch.tensor([0, 5]))
