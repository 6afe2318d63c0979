"""The seeds' zoo models: shapes, fx tracing, Table I module groups, YOLO decode/NMS/loss, and that a
few optimiser steps lower each model's own loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from prunequant.errors import ConfigError, ModelError
from prunequant.models import available_models, build, model_task
from prunequant.models import tiny_yolo as yolo

SEED_MODELS = {"lidarflow": "flow", "unet": "segmentation", "frrnet": "segmentation", "conv_vae": "vae"}
SEED_MODELS["tiny_yolo"] = "detection"


@pytest.fixture(autouse=True)
def one_thread():
    """These tests train real convs: on a busy 2-core machine two OpenMP threads stall at barriers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny(name: str) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """A small instance of `name` and a seeded batch of 4 inputs for it."""
    if name == "lidarflow":
        depth = torch.rand(4, 1, 32, 32, generator=gen(1)) * (
            torch.rand(4, 1, 32, 32, generator=gen(2)) < 0.05
        )
        return build(name, in_channels=3, input_size=32, width=4), (
            torch.rand(4, 6, 32, 32, generator=gen()),
            depth,
        )
    if name == "conv_vae":
        blocks = (torch.rand(4, 1, 7, 7, generator=gen()) > 0.5).float()  # binary, so BCE can reach 0
        return build(name, in_channels=1, input_size=28, width=4, latent_dim=4), (
            F.interpolate(blocks, scale_factor=4),
        )
    num_classes = 10 if name == "tiny_yolo" else 11
    model = build(name, num_classes=num_classes, in_channels=3, input_size=32, width=4)
    return model, (torch.rand(4, 3, 32, 32, generator=gen()),)


def as_tuple(outputs: object) -> tuple[torch.Tensor, ...]:
    return outputs if isinstance(outputs, tuple) else (outputs,)


def test_each_is_registered_with_its_task() -> None:
    for name, task in SEED_MODELS.items():
        assert model_task(name) == task and name in available_models(task)
        assert name not in available_models("classification")
    assert set(SEED_MODELS) | set(available_models("classification")) == set(available_models())


@pytest.mark.parametrize(
    "name, shapes",
    [
        ("lidarflow", [(4, 2, 32, 32)]),
        ("unet", [(4, 11, 32, 32)]),
        ("frrnet", [(4, 11, 32, 32)]),
        ("conv_vae", [(4, 1, 28, 28), (4, 4), (4, 4)]),
        ("tiny_yolo", [(4, 45, 2, 2), (4, 45, 4, 4)]),
    ],
)
def test_output_shapes_and_fx_trace(name: str, shapes: list[tuple[int, ...]]) -> None:
    model, inputs = tiny(name)
    model.eval()
    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        outputs, traced_outputs = as_tuple(model(*inputs)), as_tuple(traced(*inputs))
    assert [tuple(o.shape) for o in outputs] == shapes
    assert all(torch.equal(a, b) for a, b in zip(outputs, traced_outputs, strict=True))
    called = [n.target for n in traced.graph.nodes if n.op == "call_module"]
    assert len(called) == len(set(called))  # one module per use, so activation hooks are unambiguous


def test_lidarflow_groups_follow_table_one_and_both_inputs_matter() -> None:
    model, (frames, depth) = tiny("lidarflow")
    groups = [name for name, _ in model.named_children()]
    assert groups == ["feature_pyramid", "fusion", "cost_volume", "scene_flow", "context", "upsample"]
    assert sum(p.numel() for p in model.cost_volume.parameters()) == 0
    assert any(isinstance(m, nn.ConvTranspose2d) for m in model.scene_flow.modules())
    model.eval()
    with torch.no_grad():
        base = model(frames, depth)
        assert not torch.equal(base, model(frames, torch.zeros_like(depth)))
        assert not torch.equal(base, model(frames.flip(1), depth))
    depth_change = build("lidarflow", in_channels=3, input_size=32, width=4, out_channels=3).eval()
    assert depth_change(frames, depth).shape == (4, 3, 32, 32)


def test_vae_samples_in_training_and_is_deterministic_in_eval() -> None:
    model, (x,) = tiny("conv_vae")
    recon, mu, _ = model.eval()(x)
    assert torch.equal(model(x)[0], recon) and torch.equal(model.decode(mu), recon)
    assert recon.min() >= 0 and recon.max() <= 1
    torch.manual_seed(0)
    assert not torch.equal(model.train()(x)[0], recon)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert [type(m).__name__ for m in convs] == ["Conv2d"] * 2 + ["ConvTranspose2d"] * 3
    assert isinstance(model.decoder[-1], nn.Sigmoid)


def test_shape_arguments_are_checked() -> None:
    with pytest.raises(ConfigError, match="multiple of 8"):
        build("lidarflow", input_size=30)
    with pytest.raises(ConfigError, match="multiple of 16"):
        build("tiny_yolo", input_size=40)
    with pytest.raises(ConfigError, match="blocks"):
        build("tiny_yolo", input_size=64, blocks=(1, 2))
    with pytest.raises(ConfigError, match="multiple of 4"):
        build("conv_vae", in_channels=1, input_size=30)


def head_maps(batch: int, size: int = 64, classes: int = 10) -> list[torch.Tensor]:
    """Head maps that predict nothing anywhere (objectness logit -10)."""
    maps = []
    for stride in yolo.STRIDES:
        grid = size // stride
        head = torch.zeros(batch, 3, 5 + classes, grid, grid)
        head[:, :, 4] = -10
        maps.append(head)
    return maps


def flat(head: torch.Tensor) -> torch.Tensor:
    batch, anchors, channels, rows, cols = head.shape
    return head.reshape(batch, anchors * channels, rows, cols)


def test_decode_places_the_box_of_a_confident_cell_and_nms_removes_its_twin() -> None:
    coarse, fine = head_maps(2)
    fine[1, 1, 4, 3, 5] = 10.0  # image 1, anchor 1 of the fine head, row 3, col 5: centre (44, 28)
    fine[1, :, 5:] = -10.0  # no other class
    fine[1, 1, 5 + 7, 3, 5] = 10.0  # class 7
    fine[1, 2, 4, 3, 5] = 9.0  # anchor 2 at the same place, sized like anchor 1: same box, suppressed
    fine[1, 2, 5 + 7, 3, 5] = 10.0
    (w1, h1), (w2, h2) = yolo.ANCHORS[1][1], yolo.ANCHORS[1][2]
    fine[1, 2, 2, 3, 5], fine[1, 2, 3, 3, 5] = math.log(w1 / w2), math.log(h1 / h2)
    detections = yolo.decode((flat(coarse), flat(fine)))
    assert len(detections) == 2 and len(detections[0]["boxes"]) == 0
    found = detections[1]
    assert found["labels"].tolist() == [7] and found["scores"][0] > 0.99
    w, h = yolo.ANCHORS[1][1]
    assert found["boxes"][0].tolist() == pytest.approx([44 - w / 2, 28 - h / 2, 44 + w / 2, 28 + h / 2])


def test_nms_keeps_other_classes_and_separate_boxes() -> None:
    boxes = torch.tensor(
        [[0, 0, 10, 10], [1, 1, 11, 11], [1, 1, 11, 11], [30, 30, 40, 40]], dtype=torch.float
    )
    keep = yolo.nms(boxes, torch.tensor([0.9, 0.8, 0.7, 0.6]), torch.tensor([0, 0, 1, 0]), 0.5)
    assert keep.tolist() == [0, 2, 3]


def test_yolo_loss_is_lower_for_the_right_answer_and_checks_its_inputs() -> None:
    target = [{"boxes": torch.tensor([[36.0, 16.0, 52.0, 40.0]]), "labels": torch.tensor([7])}]
    nothing = [flat(h) for h in head_maps(1)]
    coarse, fine = head_maps(1)
    fine[0, 2, 4, 3, 5] = 10.0  # anchor (16, 24) of the fine head fits a 16 x 24 box centred at (44, 28)
    fine[0, 2, 5 + 7, 3, 5] = 10.0
    fine[0, 2, 5:, 3, 5] -= 10.0 * (torch.arange(10) != 7)
    right = (flat(coarse), flat(fine))
    assert yolo.loss(right, target) < yolo.loss(nothing, target) / 3
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    assert yolo.loss(nothing, empty) < 0.02  # 240 cells at objectness logit -10
    with pytest.raises(ModelError, match="targets for a batch"):
        yolo.loss(nothing, target * 2)
    with pytest.raises(ModelError, match="pair of head maps"):
        yolo.decode(nothing[0])


def vae_loss(outputs: tuple[torch.Tensor, ...], x: torch.Tensor) -> torch.Tensor:
    recon, mu, logvar = outputs
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (F.binary_cross_entropy(recon, x, reduction="sum") + kl) / len(x)


def seed_loss(name: str, outputs: object, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    if name == "lidarflow":
        target = torch.ones(4, 2, 32, 32) * torch.tensor([2.0, -1.0]).view(1, 2, 1, 1)
        return (outputs - target).norm(dim=1).mean()  # EPE
    if name == "conv_vae":
        return vae_loss(outputs, inputs[0])
    if name == "tiny_yolo":
        targets = [
            {"boxes": torch.tensor([[4.0, 6.0, 20.0, 26.0]]), "labels": torch.tensor([i])} for i in range(4)
        ]
        return yolo.loss(outputs, targets)
    mask = (inputs[0][:, 0] > 0.5).long() * 3  # two of the 11 classes, by pixel brightness
    return F.cross_entropy(outputs, mask)


@pytest.mark.parametrize("name", sorted(SEED_MODELS))
def test_a_few_steps_lower_the_loss(name: str) -> None:
    torch.manual_seed(0)
    model, inputs = tiny(name)
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = seed_loss(name, model(*inputs), inputs)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0], losses
