"""The compressed container: exact round trip, per-tensor codec choice, shrinking files, plug-in codecs."""

from __future__ import annotations

import zipfile

import pytest
import torch

from prunequant.errors import CheckpointError, ConfigError, ModelError
from prunequant.export.storage import (
    DenseCodec,
    SparseCodec,
    compressed_size_report,
    default_codec,
    load_compressed,
    register_tensor_codec,
    save_compressed,
)
from prunequant.models import build, save_checkpoint
from prunequant.pruning.unstructured import prune_unstructured


@pytest.fixture
def small_cnn():
    torch.manual_seed(0)
    return build("small_cnn", num_classes=10, in_channels=1, input_size=28)


def test_round_trip_is_bit_exact_and_rebuilds_the_zoo_model(tmp_path, small_cnn):
    prune_unstructured(small_cnn, 0.6)
    small_cnn.features.block1[0][1].running_mean.uniform_()  # buffers travel too
    size = save_compressed(small_cnn, tmp_path / "m.pqz", dataset="fashion-mnist", metrics={"top1": 0.9})
    assert size == (tmp_path / "m.pqz").stat().st_size
    model, meta = load_compressed(tmp_path / "m.pqz")
    assert (
        meta["arch"] == "small_cnn"
        and meta["input_shape"] == [1, 28, 28]
        and meta["metrics"] == {"top1": 0.9}
    )
    for key, value in small_cnn.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert not model.training


def test_payload_layout(tmp_path, tiny_model):
    save_compressed(tiny_model, tmp_path / "t.pqz")
    with zipfile.ZipFile(tmp_path / "t.pqz") as zf:
        assert zf.namelist() == ["payload.pt"]
        assert zf.getinfo("payload.pt").compress_type == zipfile.ZIP_DEFLATED
        zf.extract("payload.pt", tmp_path)
    payload = torch.load(tmp_path / "payload.pt", weights_only=True)
    assert payload["format"] == "prunequant-compressed" and payload["version"] == 1
    assert set(payload["entries"]) == set(tiny_model.state_dict())
    assert (
        payload["entries"]["conv1.weight"]["codec"] == "dense"
        and payload["manifest"]["conv1"]["type"] == "Conv2d"
    )


def test_codec_choice_follows_the_byte_break_even():
    dense = torch.ones(1000)
    below = dense.clone()
    below[:34] = 0  # nnz 966: 125 + 3864 + 8 = 3997 B < 4000 B
    at = dense.clone()
    at[:33] = 0  # nnz 967: 4001 B
    assert isinstance(default_codec(below), SparseCodec) and isinstance(default_codec(at), DenseCodec)
    assert isinstance(default_codec(torch.tensor(0, dtype=torch.int64)), SparseCodec)  # 1 mask byte < 8


def test_file_shrinks_with_sparsity(tmp_path, small_cnn):
    sizes = []
    for amount in (0.0, 0.5, 0.9):
        prune_unstructured(small_cnn, amount)
        sizes.append(save_compressed(small_cnn, tmp_path / f"{amount}.pqz"))
    report = compressed_size_report(small_cnn)
    assert sizes[0] > 1.6 * sizes[1] and sizes[1] > 3 * sizes[2]
    fc = report["tensors"]["classifier.0.weight"]
    nonzeros = int(torch.count_nonzero(small_cnn.classifier[0].weight))
    assert fc["codec"] == "sparse" and fc["dense_bytes"] == 4 * 128 * 128
    assert fc["encoded_bytes"] == 128 * 128 // 8 + 4 * nonzeros + 8 * 2
    assert report["file_bytes"] == sizes[2]


def test_explicit_codecs_and_registered_plugins(tmp_path, tiny_model):
    class HalfCodec:
        """A stand-in plug-in: stores float16 values and remembers the original dtype in its config."""

        name = "test-half"

        def __init__(self, dtype: str = "float32") -> None:
            self.dtype = dtype

        def encode(self, t):
            return {"half": t.detach().half()}

        def decode(self, d):
            return d["half"].to(getattr(torch, self.dtype))

        def config(self):
            return {"dtype": self.dtype}

    register_tensor_codec("test-half", lambda config: HalfCodec(**config))
    save_compressed(tiny_model, tmp_path / "h.pqz", codecs={"fc.weight": HalfCodec()})
    model, _ = load_compressed(tmp_path / "h.pqz", model=tiny_model.__class__())
    assert model.fc.weight.dtype == torch.float32
    assert torch.equal(model.fc.weight, tiny_model.fc.weight.detach().half().float())
    with pytest.raises(ConfigError, match="not in the model's state_dict"):
        save_compressed(tiny_model, tmp_path / "x.pqz", codecs={"nope": DenseCodec()})
    assert not (tmp_path / "x.pqz").exists()


def test_unreadable_files_raise_checkpoint_error(tmp_path, tiny_model):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_compressed(tmp_path / "missing.pqz")
    (tmp_path / "junk.pqz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable prunequant compressed file"):
        load_compressed(tmp_path / "junk.pqz")
    save_checkpoint(tiny_model, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError):
        load_compressed(tmp_path / "plain.pt")


def test_unknown_codec_and_model_mismatch(tmp_path, tiny_model, small_cnn):
    class Odd(DenseCodec):
        name = "unregistered-odd"

    save_compressed(tiny_model, tmp_path / "odd.pqz", codecs={"fc.bias": Odd()})
    with pytest.raises(CheckpointError, match="no tensor codec named 'unregistered-odd'"):
        load_compressed(tmp_path / "odd.pqz", model=tiny_model)
    save_compressed(tiny_model, tmp_path / "t.pqz")
    with pytest.raises(ModelError, match="does not record its architecture"):
        load_compressed(tmp_path / "t.pqz")
    with pytest.raises(CheckpointError, match="does not match the model"):
        load_compressed(tmp_path / "t.pqz", model=small_cnn)
