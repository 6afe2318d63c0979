"""chunk and split along the channels (CSP / C2f blocks of YOLO-like detectors): each piece keeps its
own channels, cut out of the producer's; along other dimensions the pieces share the channels. The pieces
of a chunk are tied channel by channel: the pruned chunk cuts its input in equal pieces again. A split
along the channels cuts at counts fixed in the code: its pieces keep their channels and are named."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.pruning.structured import dependency_groups, prune_channels


class CrossStage(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cv1 = nn.Conv2d(3, 16, 1)
        self.m = nn.Conv2d(8, 8, 3, padding=1)
        self.cv2 = nn.Conv2d(8 + 8 + 8, 6, 1)
        self.side = nn.Conv2d(6, 6, 1)

    def forward(self, x):
        a, b = self.cv1(x).chunk(2, dim=1)
        c = torch.relu(self.m(b))
        y = self.cv2(torch.cat([a, b, c], 1))
        top, bottom = torch.split(y, [2, 2], dim=2)  # spatial: both pieces have y's channels
        return self.side(top) + self.side(bottom)


def test_chunk_along_channels_splits_the_producer(equivalent):
    torch.manual_seed(0)
    model = CrossStage().eval()
    x = torch.randn(2, 3, 4, 4)
    graph = dependency_groups(model, x)
    assert sorted(g.channels for g in graph.prunable) == [6, 8, 8]
    pieces = graph.group("cv1[0:8]")
    assert {(m.module, m.role, m.offset) for m in pieces.members} >= {("cv1", "out", 0), ("cv1", "out", 8)}
    result = prune_channels(model, x, 0.5, return_result=True)
    assert not result.skipped_layers
    assert (result.model.cv1.out_channels, result.model.m.in_channels, result.model.cv2.in_channels) == (
        8,
        4,
        12,
    )
    equivalent(model, result, x)


class FixedSplit(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(3, 16, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(12, 4, 1)
        self.d = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        p, q = torch.split(self.a(x), [4, 12], dim=1)
        return self.d(torch.relu(self.b(p) + self.c(q)))


def test_split_at_fixed_counts_keeps_its_pieces_and_names_them(equivalent):
    torch.manual_seed(0)
    model = FixedSplit().eval()
    x = torch.randn(2, 3, 4, 4)
    with pytest.warns(UserWarning, match="left these layers unpruned"):
        result = prune_channels(model, x, 0.5, return_result=True)
    assert set(result.skipped_layers) == {"a"} and "fixed counts" in result.skipped_layers["a"]
    assert result.model.a.out_channels == 16 and result.model.b.out_channels == 2  # b's outputs still prune
    equivalent(model, result, x)
