"""flying-fashion: deterministic, cached with a checksum, exact flow, ~5 % sparse depth, registry splits."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from prunequant.data import flying_fashion, load_dataset, make_loaders
from prunequant.data.compose import fashion_folder, load_garments
from prunequant.errors import ConfigError, DataError
from prunequant.tasks import default_task


@pytest.fixture(scope="module")
def sample_arrays(real_fashion: Path) -> dict[str, np.ndarray]:
    return flying_fashion.generate(load_garments(real_fashion, "test"), 24, seed=3)


def cache_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "flying-fashion").glob("*.npz"))


def test_same_seed_same_bytes_other_seed_other_scenes(fashion_data_dir: Path) -> None:
    garments = load_garments(fashion_folder(fashion_data_dir), "test")
    a, b = (flying_fashion.generate(garments, 6, seed=11) for _ in range(2))
    c = flying_fashion.generate(garments, 6, seed=12)
    assert all(a[key].tobytes() == b[key].tobytes() for key in a)
    assert a["frames"].tobytes() != c["frames"].tobytes()


def test_sample_layout(sample_arrays: dict[str, np.ndarray]) -> None:
    frames, ids = sample_arrays["frames"], sample_arrays["ids"]
    assert frames.shape == (24, 6, 64, 64) and frames.dtype == np.uint8
    layers = [len(np.unique(sample[sample > 0])) for sample in ids]
    assert min(layers) >= 1 and max(layers) <= 5
    assert (ids == 0).any(axis=(1, 2)).all()  # the background shows in every sample
    assert frames[:, :3].std() > 0.05 and not np.array_equal(frames[:, :3], frames[:, 3:])


def test_warping_frame2_by_the_flow_gives_frame1_where_visible_in_both(sample_arrays) -> None:
    flow = torch.from_numpy(flying_fashion.flow_fields(sample_arrays))
    frames = torch.from_numpy(sample_arrays["frames"]).float() / 255
    frame1, frame2 = frames[:, :3], frames[:, 3:]
    size = frames.shape[-1]
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    tx, ty = xs + flow[:, 0], ys + flow[:, 1]
    grid = torch.stack([(tx + 0.5) / size * 2 - 1, (ty + 0.5) / size * 2 - 1], dim=-1).float()
    warped = F.grid_sample(frame2, grid, mode="bilinear", align_corners=False)
    # same surface in both frames at p and p + flow, away from its edges (bilinear mixing) and the border
    ids1, ids2 = torch.from_numpy(sample_arrays["ids"]).long(), torch.from_numpy(sample_arrays["ids2"]).long()
    landing = (
        ids2.flatten(1)
        .gather(1, (ty.round().clamp(0, size - 1) * size + tx.round().clamp(0, size - 1)).long().flatten(1))
        .view_as(ids1)
    )
    same = (landing == ids1) & (tx > 1) & (tx < size - 2) & (ty > 1) & (ty < size - 2)
    interior = -F.max_pool2d(-(same.float()[:, None]), 5, stride=1, padding=2)[:, 0] > 0
    assert interior.float().mean() > 0.5
    error = (warped - frame1).abs().mean(1)[interior]
    unwarped = (frame2 - frame1).abs().mean(1)[interior]
    assert error.mean() < 0.01 and error.mean() < unwarped.mean() / 4  # a sign flip gives 0.07
    assert torch.quantile(error, 0.99) < 0.08


def test_flow_is_the_known_transform_of_each_layer(sample_arrays) -> None:
    flow = flying_fashion.flow_fields(sample_arrays, depth_change=True)
    ids, motion, depth = sample_arrays["ids"], sample_arrays["motion"], sample_arrays["depth"]
    n, y, x = 5, *np.argwhere(ids[5] > 0)[0]
    tx, ty, growth, cx, cy = motion[n, ids[n, y, x]]
    assert flow[n, :, y, x] == pytest.approx(
        [
            tx + (growth - 1) * (x - cx),
            ty + (growth - 1) * (y - cy),
            depth[n, ids[n, y, x]] * (1 / growth - 1),
        ],
        abs=1e-4,
    )
    background = ids == 0
    assert np.allclose(
        flow[:, 0][background], np.repeat(motion[:, 0, 0], 64 * 64).reshape(-1, 64, 64)[background]
    )
    assert np.abs(flow[:, 2][background]).max() == 0  # the wall keeps its depth


def test_sparse_depth_has_about_5_percent_valid_pixels_with_the_visible_depth(sample_arrays) -> None:
    sparse = flying_fashion.sparse_depth(sample_arrays)[:, 0]
    valid = sparse > 0
    assert 0.04 < valid.mean() < 0.06
    dense = flying_fashion.dense_depth(sample_arrays)
    assert np.array_equal(sparse[valid], dense[valid].astype(np.float32))
    lo, hi = flying_fashion.DEPTH_RANGE
    assert ((sparse[valid] >= lo) & (sparse[valid] <= flying_fashion.BACKGROUND_DEPTH)).all()
    rows_hit = valid.any(axis=2).mean()
    assert rows_hit <= 0.26  # scan lines: only one row in four carries returns


def test_cache_is_written_then_hit_then_rebuilt_when_corrupt(fashion_data_dir: Path, monkeypatch) -> None:
    first = load_dataset("flying-fashion", fashion_data_dir, size=8, val_fraction=0.25)
    files = cache_files(fashion_data_dir)
    assert len(files) == 2  # train and test
    monkeypatch.setattr(flying_fashion, "generate", lambda *a, **k: pytest.fail("cache was not used"))
    again = load_dataset("flying-fashion", fashion_data_dir, size=8, val_fraction=0.25)
    assert torch.equal(first.train[0][0], again.train[0][0])
    monkeypatch.undo()
    raw = files[0].read_bytes()
    files[0].write_bytes(raw[: len(raw) // 2])
    with pytest.warns(UserWarning, match="unusable"):
        rebuilt = load_dataset("flying-fashion", fashion_data_dir, size=8, val_fraction=0.25)
    assert files[0].read_bytes() == raw
    assert all(torch.equal(a, b) for a, b in zip(first.test[:], rebuilt.test[:], strict=True))


def test_a_tampered_cache_fails_its_checksum(fashion_data_dir: Path) -> None:
    load_dataset("flying-fashion", fashion_data_dir, size=4, val_fraction=0.25)
    path = cache_files(fashion_data_dir)[0]
    with np.load(path) as npz:
        stored = dict(npz)
    stored["frames"] = stored["frames"] ^ 1
    np.savez(path, **stored)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_dataset("flying-fashion", fashion_data_dir, size=4, val_fraction=0.25)
    assert any("checksum mismatch" in str(w.message) for w in caught)


def test_registry_splits_feed_the_default_task_two_inputs_and_a_flow_target(fashion_data_dir: Path) -> None:
    splits = load_dataset(
        "flying-fashion", fashion_data_dir, size=12, val_fraction=0.25, limit=8, depth_change=True
    )
    assert (len(splits.train), len(splits.val), len(splits.test)) == (6, 2, 2)  # test: 3 * 8 / 12
    assert splits.input_shape == (6, 64, 64) and splits.num_classes == 3
    batch = next(iter(make_loaders(splits, batch_size=4).train))
    (frames, depth), flow = default_task().split(batch)
    assert frames.shape == (4, 6, 64, 64) and frames.min() >= 0 and frames.max() <= 1
    assert depth.shape == (4, 1, 64, 64) and flow.shape == (4, 3, 64, 64)


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_objects"):
        load_dataset("flying-fashion", tmp_path, min_objects=4, max_objects=3)
    with pytest.raises(ConfigError, match="no option"):
        load_dataset("flying-fashion", tmp_path, colour=True)


def test_missing_fashion_mnist_is_one_clear_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="fashion-mnist data not found"):
        load_dataset("flying-fashion", tmp_path / "empty", size=4)
