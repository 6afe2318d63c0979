"""flying-fashion: FlyingThings3D-style scene flow built from real Fashion-MNIST garments (seed 000).

Each sample is two RGB frames in which 2-5 tinted garments at random depths move by a random translation
and scale over a moving sinusoid-textured background, nearer garments occluding farther ones; a sparse
depth map of frame 1 (~5 % valid pixels on LiDAR-like scan lines, 0 elsewhere); and the exact dense
forward flow from frame 1 to frame 2 (optionally plus the change of depth), computed from the transforms.

A sample is ``(frames [6, H, W] in [0, 1], sparse_depth [1, H, W], flow [2 or 3, H, W])``, so the default
task split gives ``inputs = (frames, sparse_depth)`` and ``target = flow``. The model `lidarflow` takes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from prunequant.data import compose
from prunequant.data.generated import Arrays, GeneratedData
from prunequant.data.registry import register_dataset
from prunequant.errors import ConfigError
from prunequant.validation import check_fraction

VERSION = 1
BACKGROUND_DEPTH = 10.0
DEPTH_RANGE = (2.0, 9.0)
"""Garment depths (arbitrary units, like metres); the background wall sits at BACKGROUND_DEPTH."""
SCALE_RANGE = (0.7, 1.4)
GROWTH_RANGE = (0.85, 1.2)
"""Frame-1 garment scale (x its 28 px side, per 64 px of canvas) and its growth from frame 1 to frame 2;
depth changes as 1/growth (a garment that grows comes nearer)."""
BACKGROUND_SHIFT = 2.0


def generate(
    garments: compose.Garments,
    count: int,
    *,
    seed: int,
    size: int = 64,
    min_objects: int = 2,
    max_objects: int = 5,
    density: float = 0.05,
    max_shift: float = 6.0,
) -> Arrays:
    """Render `count` samples; the same arguments give the same bytes.

    Parameters
    ----------
    garments: source images. count: samples. seed: the only source of randomness.
    size: canvas side in pixels. min_objects, max_objects: garments per sample (inclusive range).
    density: expected share of valid sparse-depth pixels. max_shift: largest garment translation per axis,
    in pixels of a 64 px canvas (scaled with `size`).

    Returns
    -------
    dict with "frames" uint8 [N, 6, H, W], "ids" uint8 [N, H, W] (visible layer in frame 1, 0 = background),
    "ids2" (the same in frame 2), "lidar" bool [N, H, W] (scan mask), and per layer (background first)
    "motion" float64 [N, K+1, 5] = (tx, ty, growth, cx, cy) and "depth" float64 [N, K+1].
    """
    rng = np.random.default_rng(seed)
    k_max = max_objects
    unit = size / 64
    out: Arrays = {
        "frames": np.zeros((count, 6, size, size), np.uint8),
        "ids": np.zeros((count, size, size), np.uint8),
        "ids2": np.zeros((count, size, size), np.uint8),
        "lidar": np.zeros((count, size, size), bool),
        "motion": np.tile(np.array([0.0, 0.0, 1.0, 0.0, 0.0]), (count, k_max + 1, 1)),
        "depth": np.full((count, k_max + 1), BACKGROUND_DEPTH),
    }
    for n in range(count):
        k = int(rng.integers(min_objects, max_objects + 1))
        picks = rng.integers(len(garments.images), size=k)
        depth = rng.uniform(*DEPTH_RANGE, k)
        scale = rng.uniform(*SCALE_RANGE, k) * unit
        growth = rng.uniform(*GROWTH_RANGE, k)
        center = rng.uniform(0.15 * size, 0.85 * size, (k, 2))
        shift = rng.uniform(-max_shift, max_shift, (k, 2)) * unit
        bg_shift = rng.uniform(-BACKGROUND_SHIFT, BACKGROUND_SHIFT, 2) * unit
        texture = compose.random_texture(rng)
        tints = compose.random_tints(rng, k)
        for frame, ids_key in ((0, "ids"), (1, "ids2")):
            canvas, out[ids_key][n], _ = compose.render_scene(
                texture,
                garments.images[picks],
                center + shift if frame else center,
                scale * growth if frame else scale,
                tints,
                size=size,
                order=np.argsort(-(depth / growth if frame else depth), kind="stable"),  # far to near
                shift=tuple(bg_shift) if frame else (0.0, 0.0),
            )
            out["frames"][n, 3 * frame : 3 * frame + 3] = compose.to_uint8(canvas)
        out["motion"][n, 0, :2] = bg_shift
        out["motion"][n, 1 : k + 1] = np.column_stack([shift, growth, center])
        out["depth"][n, 1 : k + 1] = depth
        out["lidar"][n] = _scan_mask(rng, size, density)
    return out


def _scan_mask(rng: np.random.Generator, size: int, density: float) -> np.ndarray:
    """A LiDAR-like pattern: every `spacing`-th row (random phase) is a beam; each beam pixel returns with
    probability density * spacing, so the expected share of valid pixels is `density`."""
    spacing = max(1, min(4, int(1 / density))) if density > 0 else 1
    rows = np.zeros((size, 1), bool)
    rows[int(rng.integers(spacing)) :: spacing] = True
    return rows & (rng.random((size, size)) < density * spacing)


def flow_fields(arrays: Arrays, *, depth_change: bool = False) -> np.ndarray:
    """Dense forward flow [N, 2, H, W] (dx, dy in pixels) of frame 1, plus the change of depth as a third
    channel when `depth_change`: a pixel of layer i moves by t_i + (growth_i - 1) * (p - c_i)."""
    ids = arrays["ids"].astype(np.int64)
    count, size = ids.shape[0], ids.shape[-1]
    motion = np.take_along_axis(arrays["motion"], ids.reshape(count, -1, 1), axis=1).reshape(
        count, size, size, 5
    )
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    tx, ty, growth, cx, cy = np.moveaxis(motion, -1, 0)
    channels = [tx + (growth - 1) * (xs - cx), ty + (growth - 1) * (ys - cy)]
    if depth_change:
        channels.append(dense_depth(arrays) * (1 / growth - 1))
    return np.stack(channels, axis=1).astype(np.float32)


def dense_depth(arrays: Arrays) -> np.ndarray:
    """Depth [N, H, W] of the surface visible at each pixel of frame 1."""
    ids = arrays["ids"].astype(np.int64)
    return np.take_along_axis(arrays["depth"], ids.reshape(len(ids), -1), axis=1).reshape(ids.shape)


def sparse_depth(arrays: Arrays) -> np.ndarray:
    """The sparse depth input [N, 1, H, W]: the visible depth on scan pixels, 0 where there is no return."""
    return np.where(arrays["lidar"], dense_depth(arrays), 0.0).astype(np.float32)[:, None]


def to_dataset(arrays: Arrays, *, depth_change: bool = False) -> Dataset:
    """TensorDataset of (frames float [6, H, W] in [0, 1], sparse depth [1, H, W], flow [2|3, H, W])."""
    frames = torch.from_numpy(arrays["frames"]).float().div_(255.0)
    depth = torch.from_numpy(sparse_depth(arrays))
    return TensorDataset(frames, depth, torch.from_numpy(flow_fields(arrays, depth_change=depth_change)))


@register_dataset("flying-fashion")
def load_flying_fashion(
    data_dir: Path | None,
    seed: int,
    *,
    size: int = 2000,
    image_size: int = 64,
    min_objects: int = 2,
    max_objects: int = 5,
    density: float = 0.05,
    max_shift: float = 6.0,
    depth_change: bool = False,
) -> GeneratedData:
    """`size` training and `size // 4` test samples of `image_size`^2 (see the module docstring).

    Returns
    -------
    GeneratedData; `load_dataset` splits it into train/val/test.
    """
    check_fraction("density", density)
    if not 0 <= max_shift <= image_size / 4:
        raise ConfigError(f"max_shift must be in 0..{image_size / 4} pixels, got {max_shift!r}")
    train, test = compose.scene_splits(
        "flying-fashion", VERSION, generate, data_dir, seed, size=size, image_size=image_size,
        min_objects=min_objects, max_objects=max_objects, density=float(density), max_shift=float(max_shift),
    )  # fmt: skip
    return GeneratedData(
        train=train,
        test=test,
        make=lambda arrays: to_dataset(arrays, depth_change=depth_change),
        num_classes=3 if depth_change else 2,
        input_shape=(6, image_size, image_size),
        classes=("dx", "dy", "ddepth") if depth_change else ("dx", "dy"),
    )
