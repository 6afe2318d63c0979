"""A YOLO-like two-head toy detector, its decode and loss, imported by module path in the detection tests.

Images are 8x8 with bright 4x4 squares on a 2x2 grid of cells; class 0 squares are bright in channel 0,
class 1 in channel 1. Heads: objectness [B, 1, 2, 2] and class logits [B, 2, 2, 2].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CELLS = torch.tensor([[0, 0, 4, 4], [4, 0, 8, 4], [0, 4, 4, 8], [4, 4, 8, 8]], dtype=torch.float)


class TwoHeadDetector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(4))
        self.objectness = nn.Conv2d(8, 1, 1)
        self.classes = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.body(x)
        return self.objectness(hidden), self.classes(hidden)


def make_sample(cells: list[int], labels: list[int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    image = torch.zeros(2, 8, 8)
    for cell, label in zip(cells, labels, strict=True):
        x0, y0, x1, y1 = CELLS[cell].long().tolist()
        image[label, y0:y1, x0:x1] = 1.0
    return image, {"boxes": CELLS[cells].reshape(-1, 4), "labels": torch.tensor(labels, dtype=torch.long)}


def decode(outputs: tuple[torch.Tensor, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    objectness, classes = outputs
    scores = torch.sigmoid(objectness).flatten(1)  # [B, 4], cells in row-major order = CELLS order
    labels = classes.flatten(2).argmax(1)  # [B, 4]
    pairs = zip(scores, labels, strict=True)
    return [{"boxes": CELLS.clone(), "scores": s, "labels": lab} for s, lab in pairs]


def loss(outputs: tuple[torch.Tensor, torch.Tensor], targets: list[dict[str, torch.Tensor]]) -> torch.Tensor:
    objectness, classes = outputs
    present = torch.zeros(len(targets), 4)
    label_map = torch.zeros(len(targets), 4, dtype=torch.long)
    for i, target in enumerate(targets):
        for box, label in zip(target["boxes"], target["labels"], strict=True):
            cell = int((box[0] // 4) + 2 * (box[1] // 4))
            present[i, cell], label_map[i, cell] = 1.0, label
    object_loss = F.binary_cross_entropy_with_logits(objectness.flatten(1), present)
    class_logits = classes.flatten(2).transpose(1, 2)[present.bool()]
    return object_loss + F.cross_entropy(class_logits, label_map[present.bool()])


def make_decoder(threshold: float = 0.0):
    """A decode factory: drops detections scoring below `threshold`."""

    def thresholded(outputs):
        kept = []
        for d in decode(outputs):
            keep = d["scores"] >= threshold
            kept.append({k: v[keep] for k, v in d.items()})
        return kept

    return thresholded
