"""A user task, model and data factory: dense depth from an image and a sparse depth map.

Used from Python (`python examples/depth_task.py`) and from a recipe (`examples/depth.toml`).
"""

import torch
from torch import nn
from torch.utils.data import TensorDataset

from prunequant.tasks import MetricSpec, Task


class DepthTask(Task):
    """Loss: L1. Metric: mean absolute depth error, lower is better."""

    name = "depth"
    metrics = (MetricSpec("mae", "m", higher_is_better=False, label="depth MAE"),)
    primary = "mae"

    def loss(self, outputs, target):
        return (outputs - target).abs().mean()

    def metric_state(self):
        return MeanAbsoluteError()


class MeanAbsoluteError:
    def __init__(self):
        self.total, self.count = 0.0, 0

    def update(self, outputs, target):
        self.total += float((outputs - target).abs().sum())
        self.count += target.numel()

    def compute(self):
        return {"mae": self.total / max(1, self.count)}


def depth_splits(n=128, size=16, seed=0):
    """(train, val, test) datasets of (image, sparse_depth, dense_depth): two inputs, one target."""
    generator = torch.Generator().manual_seed(seed)

    def make(count):
        image = torch.rand(count, 3, size, size, generator=generator)
        dense = image.mean(1, keepdim=True)
        sparse = dense * (torch.rand(count, 1, size, size, generator=generator) < 0.05)
        return TensorDataset(image, sparse, dense)

    return make(n), make(n // 4), make(n // 4)


class DepthNet(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.image = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.depth = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.head = nn.Conv2d(2 * width, 1, 3, padding=1)

    def forward(self, image, sparse):
        return self.head(torch.cat([self.image(image), self.depth(sparse)], 1))


if __name__ == "__main__":
    import prunequant as pq

    task = DepthTask()
    train, val, test = depth_splits()
    loader = torch.utils.data.DataLoader(train, batch_size=16, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test, batch_size=16)
    model = DepthNet()
    config = pq.TrainConfig(epochs=3, lr=0.01, optimizer="adam")
    pq.Trainer(model, loader, test_loader, config, task=task).fit()
    print("trained:", pq.evaluate(model, test_loader, task).metrics)

    example = (torch.rand(1, 3, 16, 16), torch.rand(1, 1, 16, 16))  # one tensor per input
    small = pq.prune_channels(model, example, 0.5, importance="l1")
    print("half the channels:", pq.evaluate(small, test_loader, task).metrics)

    qmodel = pq.quantize(small, pq.QuantConfig(w_bits=8, a_bits=8), calib_loader=loader, task=task)
    pq.export_int8(qmodel, "depth_int8.onnx", example)
    print("int8 on onnxruntime:", pq.evaluate(pq.OnnxRunner("depth_int8.onnx"), test_loader, task).metrics)
