"""Models with several inputs and outputs: traced with every input, every output's channels kept."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.profiling import profile
from prunequant.pruning.structured import dependency_groups, prune_channels, prune_layers


class TwoInputs(nn.Module):
    """Image + sparse depth, fused by an add, with a dense 2-channel flow head and a confidence head."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.depth = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.body = nn.Sequential(nn.Conv2d(8, 12, 3, padding=1), nn.ReLU())
        self.flow = nn.Conv2d(12, 2, 1)
        self.confidence = nn.Conv2d(12, 1, 1)

    def forward(self, image, depth):
        features = self.body(torch.relu(self.image(image) + self.depth(depth)))
        return self.flow(features), {"confidence": self.confidence(features)}


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))

    def forward(self, x):
        return torch.relu(self.branch(x) + x)


class TwoHeads(nn.Module):
    """A YOLO-like detector: one trunk, two heads at two scales, returned as a list."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block = Residual()
        self.down = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.head_large = nn.Conv2d(8, 6, 1)
        self.head_small = nn.Conv2d(16, 6, 1)

    def forward(self, x):
        x = self.block(self.stem(x))
        return [self.head_large(x), self.head_small(self.down(x))]


def inputs():
    torch.manual_seed(0)
    return torch.randn(2, 3, 8, 8), torch.randn(2, 1, 8, 8)


@pytest.mark.parametrize("as_dict", [False, True])
def test_two_inputs_prune_exactly(as_dict, equivalent, randomize_norms):
    model = randomize_norms(TwoInputs())
    image, depth = inputs()
    example = {"image": image, "depth": depth} if as_dict else (image, depth)
    result = prune_channels(model, example, 0.5, return_result=True)
    pruned = {plan.name: plan for plan in result.groups if plan.removed}
    assert set(pruned) == {"image.0", "body.0"}
    assert set(pruned["image.0"].layers) >= {"image.0", "depth.0", "body.0"}  # the add ties both inputs
    flow, extra = equivalent(model, result, example)[0]
    assert flow.shape == (2, 2, 8, 8) and extra["confidence"].shape == (2, 1, 8, 8)
    assert result.model.flow.out_channels == 2 and result.model.confidence.out_channels == 1
    assert "flow" not in result.skipped_layers  # narrowed on its input side


def test_every_output_is_a_sink():
    graph = dependency_groups(TwoHeads(), torch.randn(2, 3, 8, 8))
    for head in ("head_large", "head_small"):
        assert graph.group(head).unsafe == ["model output"]
    assert {g.name for g in graph.prunable} == {"stem.0", "down.0"}


def test_two_heads_prune_exactly_and_keep_head_sizes(equivalent, randomize_norms):
    model = randomize_norms(TwoHeads())
    x = torch.randn(2, 3, 8, 8)
    result = prune_channels(model, x, 0.5, return_result=True)
    assert not result.skipped_layers
    large, small = equivalent(model, result, x)[0]
    assert large.shape == (2, 6, 8, 8) and small.shape == (2, 6, 4, 4)


def test_profile_takes_tuple_and_dict_inputs():
    image, depth = inputs()
    by_tuple = profile(TwoInputs(), (image, depth), latency=False)
    by_dict = profile(TwoInputs(), {"depth": depth, "image": image}, latency=True, warmup=1, repeats=2)
    convs = (3 * 8 + 1 * 8) * 9 * 64 + 8 * 12 * 9 * 64 + 12 * 3 * 64
    assert sum(r["macs"] for r in by_tuple.layers if r["type"] == "Conv2d") == convs
    assert by_dict.total["macs"] == by_tuple.total["macs"]
    assert by_tuple.total["batch_size"] == 2 and by_tuple.total["input_shape"] == [[3, 8, 8], [1, 8, 8]]
    assert by_dict.total["latency_ms"] > 0


def test_layer_pruning_with_a_list_output():
    model = TwoHeads().eval()
    result = prune_layers(model, torch.randn(2, 3, 8, 8), 1, importance="l1", return_result=True)
    assert result.removed_blocks == ("block",)
    assert len(result.model(torch.randn(1, 3, 8, 8))) == 2


def test_example_that_does_not_fit_forward_is_one_clear_error():
    from prunequant.errors import PrunequantError

    with pytest.raises(PrunequantError, match="does not fit TwoInputs.forward"):
        prune_channels(TwoInputs(), torch.randn(2, 3, 8, 8), 0.5)


def test_layer_pruning_with_two_inputs():
    class Fused(TwoInputs):
        def __init__(self) -> None:
            super().__init__()
            self.block = Residual()
            self.body = nn.Sequential(nn.Conv2d(8, 12, 3, padding=1), nn.ReLU())

        def forward(self, image, depth):
            x = self.block(torch.relu(self.image(image) + self.depth(depth)))
            return self.flow(self.body(x))

    result = prune_layers(Fused().eval(), inputs(), 1, importance="l1", return_result=True)
    assert result.removed_blocks == ("block",)
