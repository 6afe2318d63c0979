"""Compositing shared by the generated scene datasets: real Fashion-MNIST garments, tinted and pasted by
a scale + translation (bilinear sampling) over a smooth RGB sinusoid texture, painted far to near."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prunequant.data.generated import Arrays, cached
from prunequant.data.idx import _FASHION_CLASSES, EXPECTED_IDX, _holds_idx, _read_split
from prunequant.data.locate import find_data_dir
from prunequant.validation import check_int_range

GARMENT_SIDE = 28
ALPHA_THRESHOLD = 0.15
"""A garment covers the canvas pixels where its sampled intensity (in [0, 1]) exceeds this."""
GARMENT_CLASSES = _FASHION_CLASSES
_HOW_TO_GET = "apt-get install dataset-fashion-mnist (the generated scenes are built from its real images)"
_WAVES = 4


@dataclass(frozen=True)
class Garments:
    """Fashion-MNIST images as float [N, 28, 28] in [0, 1] and their class indices [N]."""

    images: np.ndarray
    labels: np.ndarray


def fashion_folder(data_dir: str | os.PathLike | None) -> Path:
    """The folder of the four Fashion-MNIST IDX files: data_dir (the generated datasets' cache root, which
    need not hold them), then $PRUNEQUANT_DATA, then the system copy."""
    return find_data_dir(
        "fashion-mnist",
        data_dir,
        holds_data=_holds_idx,
        how_to_get=_HOW_TO_GET,
        expected=f"Fashion-MNIST's {EXPECTED_IDX}",
        layouts=("", "FashionMNIST/raw"),
        only_given=False,
    )


def load_garments(folder: Path, split: str) -> Garments:
    """Fashion-MNIST's `split` ("train" or "test") garments; train and test scenes never share one."""
    images, labels = _read_split(folder, split)
    return Garments(images[:, 0].astype(np.float32) / 255.0, labels.astype(np.int64))


def source_fingerprint(folder: Path) -> str:
    """Names and sizes of the source files, for cache keys: another Fashion-MNIST copy rebuilds."""
    return ";".join(f"{p.name}:{p.stat().st_size}" for p in sorted(folder.iterdir()) if "idx" in p.name)


def cached_split(
    name: str,
    version: int,
    generate: Callable[..., Arrays],
    data_dir: str | os.PathLike | None,
    seed: int,
    split: str,
    count: int,
    **options: Any,
) -> Arrays:
    """`generate(garments, count, seed=..., **options)` for one split, through the cache.

    "train" scenes use Fashion-MNIST's train garments and "test" scenes its test garments, each split
    with its own seed derived from `seed`. The cache key holds `version`, the arguments and the source
    files' fingerprint.
    """
    folder = fashion_folder(data_dir)
    params = {"version": version, "split": split, "count": count, "seed": seed, **options}
    params["source"] = source_fingerprint(folder)
    split_seed = int(np.random.SeedSequence([seed, 0 if split == "train" else 1]).generate_state(1)[0])
    return cached(
        name,
        params,
        lambda: generate(load_garments(folder, split), count, seed=split_seed, **options),
        data_dir,
    )


def scene_splits(
    name: str,
    version: int,
    generate: Callable[..., Arrays],
    data_dir: str | os.PathLike | None,
    seed: int,
    *,
    size: int,
    image_size: int,
    min_objects: int,
    max_objects: int,
    **options: Any,
) -> tuple[Arrays, Arrays]:
    """Check the options every scene dataset has, then (train, test) arrays through the cache.

    `size` training and max(1, size // 4) test samples of `image_size`^2 with min..max garments each;
    `options` go to `generate` as they are.
    """
    check_int_range("size", size, 2, 10_000_000)
    check_int_range("image_size", image_size, 16, 1024)
    check_int_range("min_objects", min_objects, 1, 20)
    check_int_range("max_objects", max_objects, min_objects, 20)
    shared = {"size": image_size, "min_objects": min_objects, "max_objects": max_objects, **options}
    return tuple(  # type: ignore[return-value]
        cached_split(name, version, generate, data_dir, seed, split, count, **shared)
        for split, count in (("train", size), ("test", max(1, size // 4)))
    )


def render_scene(
    texture: np.ndarray,
    images: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    tints: np.ndarray,
    *,
    size: int,
    order: Sequence[int] | None = None,
    shift: tuple[float, float] = (0.0, 0.0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paint garment `images[i]` at `centers[i]`, scaled by `scales[i]`, tinted `tints[i]`, over the texture
    moved by `shift`, in `order` (default: index order; later ones occlude earlier ones).

    Returns
    -------
    (canvas float [C, size, size], ids uint8 [size, size] with i + 1 where garment i shows and 0 on the
    background, the full area in pixels of each garment before occlusion [k]).
    """
    canvas = render_texture(texture, size, shift)
    ids = np.zeros((size, size), np.uint8)
    area = np.zeros(len(images), np.int64)
    for i in range(len(images)) if order is None else order:
        intensity = sample_garment(images[i], tuple(centers[i]), float(scales[i]), size)
        paint(canvas, ids, intensity, tints[i], int(i) + 1)
        area[i] = int((intensity > ALPHA_THRESHOLD).sum())
    return canvas, ids, area


def random_texture(rng: np.random.Generator, channels: int = 3) -> np.ndarray:
    """Texture parameters [channels, waves, 4]: amplitude, x and y frequency (cycles per pixel), phase."""
    amplitude = rng.uniform(0.04, 0.12, (channels, _WAVES))
    frequency = rng.uniform(-0.08, 0.08, (channels, _WAVES, 2))
    phase = rng.uniform(0, 2 * np.pi, (channels, _WAVES))
    return np.concatenate([amplitude[..., None], frequency, phase[..., None]], axis=-1)


def render_texture(params: np.ndarray, size: int, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The texture [C, size, size] in [0, 1] moved by `shift` (dx, dy): p shows the unmoved p - shift.

    It is a continuous function of the position, so a translated background is exact, not resampled.
    """
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    xs, ys = xs - shift[0], ys - shift[1]
    amp, fx, fy, phase = (params[..., i][..., None, None] for i in range(4))
    waves = amp * np.sin(2 * np.pi * (fx * xs + fy * ys) + phase)
    return np.clip(0.5 + waves.sum(axis=1), 0.0, 1.0).astype(np.float32)


def sample_garment(garment: np.ndarray, center: tuple[float, float], scale: float, size: int) -> np.ndarray:
    """Intensity [size, size] of `garment` scaled by `scale` about its centre and placed with it at `center`.

    Canvas pixel p shows garment point (p - center) / scale + 13.5 (bilinear, zero outside the garment).
    """
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    half = (GARMENT_SIDE - 1) / 2
    u = (xs - center[0]) / scale + half
    v = (ys - center[1]) / scale + half
    u0, v0 = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    du, dv = u - u0, v - v0
    padded = np.pad(garment, 1)  # index i+1 is garment pixel i; outside reads zero
    out = np.zeros((size, size))
    for oy, ox, weight in (
        (0, 0, (1 - du) * (1 - dv)),
        (0, 1, du * (1 - dv)),
        (1, 0, (1 - du) * dv),
        (1, 1, du * dv),
    ):
        iu = np.clip(u0 + ox + 1, 0, GARMENT_SIDE + 1)
        iv = np.clip(v0 + oy + 1, 0, GARMENT_SIDE + 1)
        inside = (u0 + ox >= -1) & (u0 + ox <= GARMENT_SIDE) & (v0 + oy >= -1) & (v0 + oy <= GARMENT_SIDE)
        out += np.where(inside, weight * padded[iv, iu], 0.0)
    return out.astype(np.float32)


def random_tints(rng: np.random.Generator, count: int, channels: int = 3) -> np.ndarray:
    """Garment colours [count, C] in [0.25, 1]."""
    return rng.uniform(0.25, 1.0, (count, channels)).astype(np.float32)


def paint(
    canvas: np.ndarray, ids: np.ndarray, intensity: np.ndarray, tint: np.ndarray, layer_id: int
) -> None:
    """Paint a garment layer over `canvas` [C, H, W] and record `layer_id` in `ids` [H, W] where it covers.

    Covered pixels take tint * (0.35 + 0.65 * intensity), so the garment's own texture stays visible.
    """
    cover = intensity > ALPHA_THRESHOLD
    canvas[:, cover] = tint[:, None] * (0.35 + 0.65 * intensity[cover])[None]
    ids[cover] = layer_id


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A float image in [0, 1] as rounded uint8."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
