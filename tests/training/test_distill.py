"""Knowledge distillation: loss values by hand, temperature scaling, gradients, teacher, tasks, features."""

import copy
import math

import pytest
import torch
from torch import nn

from prunequant.errors import ConfigError, ModelError
from prunequant.tasks import ClassificationTask, SegmentationTask
from prunequant.training import Distillation, TrainConfig, Trainer, distillation_loss, finetune_then_refine
from prunequant.training.distill import Distiller, kl_distillation, resolve_kind


def test_kl_distillation_matches_a_hand_computed_value():
    student, teacher = torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0]])
    # teacher probabilities (3/4, 1/4), student (1/2, 1/2): KL = 3/4 ln(3/2) + 1/4 ln(1/2)
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert float(kl_distillation(student, teacher, 1.0)) == pytest.approx(expected, rel=1e-6)
    assert float(kl_distillation(teacher, teacher, 1.0)) == pytest.approx(0.0, abs=1e-7)


def test_temperature_softens_and_scales_by_t_squared():
    student, teacher = torch.tensor([[0.0, 0.0]]), torch.tensor([[2 * math.log(3.0), 0.0]])
    # at T=2 the teacher's softened probabilities are again (3/4, 1/4); the KL is multiplied by T^2 = 4
    expected = 4 * (0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    assert float(kl_distillation(student, teacher, 2.0)) == pytest.approx(expected, rel=1e-6)


def test_kl_is_averaged_per_sample_and_per_pixel():
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randn(2, 3, 4, 4)
    per_pixel = [
        float(kl_distillation(logits[b, :, i, j][None], target[b, :, i, j][None], 1.0))
        for b in range(2)
        for i in range(4)
        for j in range(4)
    ]
    assert float(kl_distillation(logits, target, 1.0)) == pytest.approx(sum(per_pixel) / 32, rel=1e-5)


def test_dense_kinds_and_structured_outputs():
    student = {"flow": torch.tensor([[1.0, 3.0]]), "mask": torch.tensor([[0.0]])}
    teacher = {"flow": torch.tensor([[0.0, 1.0]]), "mask": torch.tensor([[2.0]])}
    # mse per output: (1 + 4) / 2 = 2.5 and 4; mean 3.25. l1: 1.5 and 2; mean 1.75
    assert float(distillation_loss(student, teacher, "mse")) == pytest.approx(3.25)
    assert float(distillation_loss(student, teacher, "l1")) == pytest.approx(1.75)
    with pytest.raises(ModelError, match="differs from the teacher"):
        distillation_loss(torch.zeros(1, 2), torch.zeros(1, 3), "mse")
    with pytest.raises(ModelError, match="student returned"):
        distillation_loss((torch.zeros(1, 2),), (torch.zeros(1, 2), torch.zeros(1, 2)), "mse")


def test_auto_kind_follows_the_task(regression_task):
    assert resolve_kind("auto", ClassificationTask()) == "kl"
    assert resolve_kind("auto", SegmentationTask()) == "kl"
    assert resolve_kind("auto", regression_task) == "mse"
    assert resolve_kind("l1", ClassificationTask()) == "l1"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"weight": 1.5}, "distill weight"),
        ({"temperature": 0.0}, "distill temperature"),
        ({"kind": "cosine"}, "distill kind"),
        ({"features": "conv1"}, "distill features"),
    ],
)
def test_bad_settings_are_refused(tiny_model, changes, message):
    with pytest.raises(ConfigError, match=message):
        Distillation(teacher=tiny_model, **changes)


def test_gradients_reach_the_student_only_and_the_teacher_is_untouched(tiny_model, blob_loaders):
    train, val = blob_loaders
    teacher = copy.deepcopy(tiny_model).train()
    before = copy.deepcopy(teacher.state_dict())  # includes BN running stats: eval mode keeps them
    student = copy.deepcopy(tiny_model)
    with torch.no_grad():
        student.fc.weight.add_(0.5)
    config = TrainConfig(epochs=1, lr=0.05, max_batches_per_epoch=2)
    trainer = Trainer(student, train, val, config, distill=Distillation(teacher, weight=1.0, temperature=2.0))
    history = trainer.fit()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert teacher.training  # its mode is given back
    assert not torch.equal(student.fc.weight, tiny_model.fc.weight + 0.5)
    assert history[0]["train_kd_loss"] > 0


def test_the_loss_mixes_task_and_distillation_terms(tiny_model, blob_loaders):
    train, _ = blob_loaders
    teacher = copy.deepcopy(tiny_model)
    with torch.no_grad():
        teacher.fc.bias.add_(torch.tensor([1.0, 0.0, -1.0, 0.0]))
    distill = Distillation(teacher, weight=0.25, temperature=3.0, kind="kl")
    trainer = Trainer(
        tiny_model, train, None, TrainConfig(epochs=1, max_batches_per_epoch=1), distill=distill
    )
    trainer.distiller.on_train_start(trainer)
    inputs, target = next(iter(train))
    trainer.inputs, trainer.target = inputs, target
    trainer.outputs = tiny_model(inputs)
    trainer.loss = trainer.task.loss(trainer.outputs, target)
    total = trainer.loss + trainer.distiller.extra_loss(trainer)
    kd = kl_distillation(trainer.outputs, teacher.eval()(inputs), 3.0)
    assert total.item() == pytest.approx((0.75 * trainer.loss + 0.25 * kd).item(), rel=1e-5)
    trainer.distiller.on_train_end(trainer)


def test_dense_two_input_task_distills_by_mse(two_input_model, flow_loaders, regression_task):
    train, val = flow_loaders
    teacher = copy.deepcopy(two_input_model)
    distill = Distillation(teacher, weight=0.5, features=("fuse",))
    result = finetune_then_refine(
        two_input_model,
        train,
        val,
        TrainConfig(epochs=1, lr=0.01, optimizer="adam", max_batches_per_epoch=2),
        refine_epochs=1,
        task=regression_task,
        distill=distill,
    )
    kds = [row["train_kd_loss"] for row in result.history]
    assert len(kds) == 2 and all(math.isfinite(v) for v in kds)


class _Pruned(nn.Module):
    """A student whose middle layer lost channels: its `conv1` output differs from the teacher's."""

    def __init__(self, teacher: nn.Module) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 16, 3, padding=1, stride=2)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), copy.deepcopy(teacher.fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def test_features_with_other_shapes_or_names_are_refused(tiny_model, blob_loaders):
    train, val = blob_loaders
    config = TrainConfig(epochs=1, max_batches_per_epoch=1)
    student = _Pruned(tiny_model)
    with pytest.raises(ModelError, match="distill feature 'conv1' is Tensor\\[32, 4, 8, 8\\] in the student"):
        Trainer(student, train, val, config, distill=Distillation(tiny_model, features=("conv1",))).fit()
    with pytest.raises(ConfigError, match="'bn1' is not a module of the student"):
        Trainer(student, train, val, config, distill=Distillation(tiny_model, features=("bn1",))).fit()
    with pytest.raises(ConfigError, match="teacher is the model being trained"):
        Trainer(tiny_model, train, val, config, distill=Distillation(tiny_model)).fit()


def test_matching_features_add_their_mse(tiny_model, blob_loaders):
    train, _ = blob_loaders
    teacher = copy.deepcopy(tiny_model)
    distiller = Distiller(Distillation(teacher, weight=1.0, kind="mse", features=("conv2",)))
    trainer = Trainer(tiny_model, train, None, TrainConfig(epochs=1))
    distiller.on_train_start(trainer)
    inputs, target = next(iter(train))
    with torch.no_grad():
        teacher.conv2.bias.add_(1.0)  # shifts conv2's output by exactly 1 everywhere
    trainer.inputs, trainer.outputs = inputs, tiny_model.eval()(inputs)
    trainer.loss = torch.tensor(0.0)
    kd = distiller.extra_loss(trainer)
    output_term = distillation_loss(trainer.outputs, teacher.eval()(inputs), "mse")
    assert kd.item() == pytest.approx(output_term.item() + 1.0, rel=1e-5)
    distiller.on_train_end(trainer)
