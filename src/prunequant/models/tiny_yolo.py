"""A tiny YOLOv3 (Redmon & Farhadi 2018; seed 004): Darknet residual blocks, two heads at strides 16 and 8
joined by an upsample + concat route; plus `decode` (boxes, scores, labels with NMS) and a YOLO `loss`.

forward(images) returns (coarse, fine): raw head maps [B, A * (5 + classes), H/16, W/16] and
[B, A * (5 + classes), H/8, W/8], A = 3 anchors each, channels per anchor (tx, ty, tw, th, objectness,
class logits). A detection task takes ``decode="prunequant.models.tiny_yolo:decode"`` and
``loss="prunequant.models.tiny_yolo:loss"``; targets are per-image dicts of "boxes" (xyxy pixels) and
"labels", as fashion-scenes gives with ``targets="boxes"``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from prunequant.errors import ConfigError, ModelError
from prunequant.models.layers import conv_bn_act, init_conv_weights
from prunequant.models.registry import register_model
from prunequant.validation import check_int_range

STRIDES = (16, 8)
ANCHORS = (((20.0, 30.0), (30.0, 22.0), (34.0, 36.0)), ((8.0, 18.0), (14.0, 12.0), (16.0, 24.0)))
"""Anchor (w, h) in pixels per head (coarse first), sized for fashion-scenes' garments on 64 px canvases."""
_LEAKY = functools.partial(nn.LeakyReLU, 0.1)


def darknet_conv(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    """Darknet's unit: conv (no bias) -> BatchNorm -> LeakyReLU(0.1)."""
    return conv_bn_act(in_channels, out_channels, kernel_size, stride=stride, activation=_LEAKY)


class Residual(nn.Module):
    """Darknet residual block: 1x1 conv to half the channels, 3x3 conv back, identity add."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.reduce = darknet_conv(channels, channels // 2, 1)
        self.expand = darknet_conv(channels // 2, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.expand(self.reduce(x))


def stage(in_channels: int, out_channels: int, blocks: int) -> nn.Sequential:
    """A stride-2 3x3 conv, then `blocks` residual blocks (`0` is the downsample, `1..` the blocks)."""
    return nn.Sequential(
        darknet_conv(in_channels, out_channels, 3, 2), *(Residual(out_channels) for _ in range(blocks))
    )


class TinyYOLO(nn.Module):
    """`backbone` (stem, stage1..stage4 at strides 2..16), `neck` + `head_coarse` at stride 16, `route` (1x1
    conv + 2x upsample, concatenated with stage3) + `head_fine` at stride 8."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        width: int = 8,
        blocks: Sequence[int] = (1, 2, 2, 2),
    ) -> None:
        super().__init__()
        w = [width * 2**i for i in range(5)]
        per_anchor = 5 + num_classes
        self.backbone = nn.ModuleDict(
            {
                "stem": darknet_conv(in_channels, w[0]),
                "stage1": stage(w[0], w[1], blocks[0]),
                "stage2": stage(w[1], w[2], blocks[1]),
                "stage3": stage(w[2], w[3], blocks[2]),
                "stage4": stage(w[3], w[4], blocks[3]),
            }
        )
        self.neck = darknet_conv(w[4], w[3], 1)
        self.head_coarse = nn.Sequential(darknet_conv(w[3], w[4]), nn.Conv2d(w[4], 3 * per_anchor, 1))
        self.route = nn.Sequential(darknet_conv(w[3], w[2], 1), nn.Upsample(scale_factor=2, mode="nearest"))
        self.head_fine = nn.Sequential(
            darknet_conv(w[2] + w[3], w[2], 1), darknet_conv(w[2], w[3]), nn.Conv2d(w[3], 3 * per_anchor, 1)
        )
        init_conv_weights(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.backbone
        fine_features = b["stage3"](b["stage2"](b["stage1"](b["stem"](x))))
        neck = self.neck(b["stage4"](fine_features))
        fine = self.head_fine(torch.cat([self.route(neck), fine_features], dim=1))
        return self.head_coarse(neck), fine


def _per_anchor(head: torch.Tensor) -> torch.Tensor:
    """[B, A*(5+C), G, G] -> [B, A, G, G, 5+C]."""
    batch, channels, rows, cols = head.shape
    return head.view(batch, 3, channels // 3, rows, cols).permute(0, 1, 3, 4, 2)


def _check_outputs(outputs: object) -> tuple[torch.Tensor, ...]:
    if not isinstance(outputs, (tuple, list)) or len(outputs) != len(STRIDES):
        raise ModelError(
            f"tiny_yolo outputs must be a (coarse, fine) pair of head maps, got {type(outputs).__name__}"
        )
    return tuple(outputs)


def decode(
    outputs: Sequence[torch.Tensor],
    *,
    score_threshold: float = 0.05,
    iou_threshold: float = 0.5,
    max_detections: int = 100,
    anchors: Sequence = ANCHORS,
) -> list[dict[str, torch.Tensor]]:
    """Detections per image from the two head maps: score = objectness x class probability.

    Parameters
    ----------
    outputs: (coarse, fine) as TinyYOLO returns them.
    score_threshold: drop candidates scoring below it. iou_threshold: class-wise NMS overlap.
    max_detections: kept per image (highest scores). anchors: (w, h) per head, as ANCHORS.

    Returns
    -------
    One dict per image: "boxes" float [n, 4] xyxy pixels, "scores" [n], "labels" int64 [n].
    """
    candidates = []
    for head, stride, head_anchors in zip(_check_outputs(outputs), STRIDES, anchors, strict=True):
        p = _per_anchor(head.detach().float())
        batch, _, rows, cols, _ = p.shape
        gy, gx = torch.meshgrid(
            torch.arange(rows, device=p.device), torch.arange(cols, device=p.device), indexing="ij"
        )
        wh = torch.tensor(head_anchors, dtype=p.dtype, device=p.device).view(1, 3, 1, 1, 2)
        cx = (p[..., 0].sigmoid() + gx) * stride
        cy = (p[..., 1].sigmoid() + gy) * stride
        size = p[..., 2:4].clamp(max=8).exp() * wh
        boxes = torch.stack(
            [cx - size[..., 0] / 2, cy - size[..., 1] / 2, cx + size[..., 0] / 2, cy + size[..., 1] / 2], -1
        )
        scores = p[..., 4:5].sigmoid() * p[..., 5:].sigmoid()
        candidates.append((boxes.reshape(batch, -1, 4), scores.reshape(batch, -1, scores.shape[-1])))
    boxes = torch.cat([c[0] for c in candidates], dim=1)
    scores = torch.cat([c[1] for c in candidates], dim=1)
    return [
        _select(b, s, score_threshold, iou_threshold, max_detections)
        for b, s in zip(boxes, scores, strict=True)
    ]


def _select(
    boxes: torch.Tensor, scores: torch.Tensor, threshold: float, iou: float, limit: int
) -> dict[str, torch.Tensor]:
    """Candidates of one image above `threshold` (one per box and class), class-wise NMS, top `limit`."""
    index, label = torch.nonzero(scores > threshold, as_tuple=True)
    score = scores[index, label]
    order = score.argsort(descending=True)[: 10 * limit]
    index, label, score = index[order], label[order], score[order]
    keep = nms(boxes[index], score, label, iou)[:limit]
    return {"boxes": boxes[index[keep]], "scores": score[keep], "labels": label[keep]}


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU matrix [len(a), len(b)] of xyxy boxes."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None] - inter).clamp(min=1e-9)


def nms(
    boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Indices of the boxes kept by greedy class-wise non-maximum suppression, highest score first."""
    order = scores.argsort(descending=True)
    overlap = box_iou(boxes[order], boxes[order]) > iou_threshold
    overlap &= labels[order][:, None] == labels[order][None, :]
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=order.device)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlap[i]
    return order[torch.tensor(keep, dtype=torch.long, device=order.device)]


def loss(
    outputs: Sequence[torch.Tensor],
    targets: Sequence[dict[str, torch.Tensor]],
    *,
    anchors: Sequence = ANCHORS,
) -> torch.Tensor:
    """YOLOv3 loss, summed over cells and averaged over images: each true box is assigned to the anchor
    (of either head) whose shape fits it best, at the cell holding its centre; BCE on the centre offsets,
    squared error on the log size ratios, BCE on objectness (every cell) and on the one-hot classes.

    Parameters
    ----------
    outputs: (coarse, fine) head maps. targets: per image, "boxes" [n, 4] xyxy pixels and "labels" [n].

    Returns
    -------
    Scalar loss tensor.
    """
    heads = [_per_anchor(h) for h in _check_outputs(outputs)]
    if len(targets) != heads[0].shape[0]:
        raise ModelError(
            f"tiny_yolo loss got {len(targets)} targets for a batch of {heads[0].shape[0]} images"
        )
    flat = torch.tensor([wh for head in anchors for wh in head], dtype=heads[0].dtype, device=heads[0].device)
    objectness = [torch.zeros(h.shape[:4], dtype=h.dtype, device=h.device) for h in heads]
    box_terms = []
    for image, target in enumerate(targets):
        boxes, labels = target["boxes"].to(heads[0]), target["labels"]
        wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0)
        inter = torch.minimum(wh[:, None], flat[None]).prod(-1)
        best = (inter / (wh.prod(-1)[:, None] + flat.prod(-1)[None] - inter)).argmax(1)
        for box, label, choice in zip(boxes, labels, best.tolist(), strict=True):
            level, a = divmod(choice, 3)
            stride, p = STRIDES[level], heads[level]
            centre = (box[:2] + box[2:]) / 2 / stride
            col = int(centre[0].clamp(0, p.shape[3] - 1))
            row = int(centre[1].clamp(0, p.shape[2] - 1))
            cell = p[image, a, row, col]
            objectness[level][image, a, row, col] = 1.0
            offset = centre - torch.tensor([col, row], dtype=centre.dtype, device=centre.device)
            ratio = torch.log((box[2:] - box[:2]).clamp(min=1.0) / flat[choice].to(box))
            one_hot = F.one_hot(label.long(), cell.shape[0] - 5).to(cell.dtype)
            box_terms.append(
                F.binary_cross_entropy_with_logits(cell[:2], offset.clamp(0, 1), reduction="sum")
                + F.mse_loss(cell[2:4], ratio, reduction="sum")
                + F.binary_cross_entropy_with_logits(cell[5:], one_hot, reduction="sum")
            )
    total = sum(
        F.binary_cross_entropy_with_logits(p[..., 4], obj, reduction="sum")
        for p, obj in zip(heads, objectness, strict=True)
    )
    if box_terms:
        total = total + torch.stack(box_terms).sum()
    return total / max(1, len(targets))


@register_model("tiny_yolo", task="detection")
def tiny_yolo(
    *,
    num_classes: int,
    in_channels: int,
    input_size: int,
    width: int = 8,
    blocks: Sequence[int] = (1, 2, 2, 2),
) -> TinyYOLO:
    """TinyYOLO for `num_classes` (fashion-scenes boxes: 10); input_size a multiple of 16; `blocks` is the
    number of residual blocks of stage1..stage4."""
    check_int_range("width", width, 1, 4096)
    blocks = tuple(blocks)
    if len(blocks) != 4 or not all(isinstance(n, int) and 0 <= n <= 64 for n in blocks):
        raise ConfigError(f"blocks must be four counts of residual blocks in 0..64, got {blocks!r}")
    if input_size % 16:
        raise ConfigError(f"tiny_yolo needs input_size a multiple of 16, got {input_size}")
    return TinyYOLO(num_classes, in_channels, width, blocks)
