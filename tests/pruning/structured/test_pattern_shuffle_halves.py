"""ShuffleNetV2's pass-through halves (torchvision's InvertedResidual: `x.chunk(2, dim=1)`, one half passed
through, the other through a branch, concatenated and channel-shuffled in 2 groups). A pass-through half is
itself the shuffled output of the unit before, so no tie channel by channel holds; the graph routes each
stage's chunks and shuffles instead (routing.py), and every branch output and half is pruned exactly."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from prunequant.pruning.structured import (
    ChannelPruneConfig,
    LayerwisePruning,
    StepwisePruning,
    dependency_groups,
    prune_channels,
)
from prunequant.training import TrainConfig, Trainer


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """torchvision's channel_shuffle, as written there (sizes read from x.size(), flattened by count)."""
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, num_channels, height, width)


def conv_bn(inp: int, out: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(inp, out, kernel, stride, kernel // 2, bias=False, groups=groups), nn.BatchNorm2d(out)]


class InvertedResidual(nn.Module):
    """torchvision's ShuffleNetV2 unit: stride 2 concatenates two branches of the whole input, stride 1
    passes the first half of the channels through and runs the second half through branch2."""

    def __init__(self, inp: int, out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = out // 2
        self.branch1 = nn.Sequential()
        if stride > 1:
            self.branch1 = nn.Sequential(*conv_bn(inp, inp, 3, stride, inp), *conv_bn(inp, half), nn.ReLU())
        self.branch2 = nn.Sequential(
            *conv_bn(inp if stride > 1 else half, half), nn.ReLU(),
            *conv_bn(half, half, 3, stride, half), *conv_bn(half, half), nn.ReLU(),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """torchvision's ShuffleNetV2 layout; shufflenet_v2_x1_0 is repeats (4, 8, 4), widths (24, 116, 232,
    464, 1024)."""

    def __init__(self, repeats=(3, 2), widths=(8, 16, 32, 64), num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(*conv_bn(3, widths[0], 3, 2), nn.ReLU())
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.stages = nn.Sequential()
        for depth, inp, out in zip(repeats, widths[:-2], widths[1:-1], strict=True):
            units = [InvertedResidual(out, out, 1) for _ in range(depth - 1)]
            self.stages.append(nn.Sequential(InvertedResidual(inp, out, 2), *units))
        self.conv5 = nn.Sequential(*conv_bn(widths[-2], widths[-1]), nn.ReLU())
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv5(self.stages(self.maxpool(self.conv1(x))))
        return self.fc(x.mean([2, 3]))


def test_shufflenet_prunes_every_layer_exactly_through_its_routed_halves(
    equivalent, randomize_norms, onnx_matches, tmp_path
):
    torch.manual_seed(0)
    model = randomize_norms(ShuffleNetV2())
    x = torch.randn(2, 3, 64, 64)
    graph = dependency_groups(model, x)
    assert [len(region.widths) for region in graph.regions] == [4, 3]  # one region per stage
    # named after their first branch output, whatever the hash seed (sets of names once chose it)
    assert [region.name for region in graph.regions] == [
        "routed:stages.0.0.branch1.2",
        "routed:stages.1.0.branch1.2",
    ]
    assert not graph.skipped_layers
    result = prune_channels(model, x, 0.5, return_result=True)
    assert not result.skipped_layers
    for s, width in enumerate((16, 32)):  # every branch output and pass-through half is halved
        for unit in result.model.stages[s]:
            assert unit.branch2[5].out_channels == width // 4
            half = unit.branch2[0].in_channels if unit.stride == 1 else unit.branch1[2].out_channels
            assert half == width // 4
    assert (result.model.conv5[0].in_channels, result.model.conv5[0].out_channels) == (16, 32)
    regions = [plan for plan in result.groups if plan.name.startswith("routed:")]
    assert [(plan.channels, plan.kept) for plan in regions] == [(32, 16), (48, 24)]
    equivalent(model, result, x)
    onnx_matches(result.model, x, tmp_path / "shufflenet_v2.onnx")


def test_a_width_moved_to_the_nearest_feasible_one_is_said_in_the_plan_and_the_meta():
    """At 0.4375 the first stage is allocated 18 of its 32 channels, 4.5 of 8 per source: it keeps 5."""
    model = ShuffleNetV2()
    result = prune_channels(model, torch.randn(1, 3, 64, 64), 0.4375, return_result=True)
    first = next(plan for plan in result.groups if plan.name == "routed:stages.0.0.branch1.2")
    assert first.kept == 20 and "18 were allocated: the nearest width" in first.note
    noted = [entry for entry in result.meta()["groups"] if "note" in entry]
    assert [entry["name"] for entry in noted] == [first.name]


def test_the_default_choice_follows_the_routing_at_every_width():
    """Every keep of the toy stages is feasible, and each plan keeps widths in proportion."""
    model = ShuffleNetV2()
    for region in dependency_groups(model, torch.randn(1, 3, 64, 64)).regions:
        assert region.keeps() == list(range(1, region.step + 1))
        plan = region.plan(region.step // 2)
        assert {name: len(kept) for name, kept in plan.kept.items()} == region.scaled(region.step // 2)


def shuffle_loaders() -> tuple[DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(32, 3, 64, 64, generator=generator)
    targets = torch.randint(0, 10, (32,), generator=generator)
    data = TensorDataset(images, targets)
    return DataLoader(data, batch_size=8), DataLoader(data, batch_size=16)


def test_stepwise_pruning_ramps_the_regions_to_the_final_amount_without_compounding():
    torch.manual_seed(0)
    model = ShuffleNetV2()
    x = torch.randn(2, 3, 64, 64)
    callback = StepwisePruning(x, ChannelPruneConfig(amount=0.5), steps=2, frequency=1, start_step=1)
    Trainer(model, *shuffle_loaders(), TrainConfig(epochs=1, lr=0.01), [callback]).fit()  # 4 steps
    kept = [[plan.kept for plan in r.groups if plan.name.startswith("routed:")] for r in callback.results]
    # amount 0.4375 at step 2: 4.5 of 8 per source in stage 1 (a tie keeps 5), 9 of 16 in stage 2; at the
    # ramp's end half of the ORIGINAL widths, from odd widths (5) that the first walk's ties cannot cut
    assert kept[-2:] == [[20, 27], [16, 24]]
    assert model.stages[1][0].branch2[5].out_channels == 8


def test_layerwise_pruning_prunes_each_region_at_its_turn():
    torch.manual_seed(0)
    model = ShuffleNetV2()
    callback = LayerwisePruning(torch.randn(2, 3, 64, 64), ChannelPruneConfig(amount=0.5), interval=1)
    Trainer(model, *shuffle_loaders(), TrainConfig(epochs=3, lr=0.01), [callback]).fit()
    regions = [name for name in callback.order if name.startswith("routed:")]
    assert len(regions) == 2 and set(regions) <= set(callback.done)
    assert model.conv5[0].in_channels == 16 and model.stages[0][1].branch2[0].in_channels == 4
