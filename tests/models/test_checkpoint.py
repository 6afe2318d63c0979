"""Checkpoints: bit-exact round trips (pruned shapes too), weights_only safety, atomic writes, errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from prunequant.errors import CheckpointError, ModelError
from prunequant.models import build, build_from_spec, load_checkpoint, save_checkpoint

SIDE_EFFECTS: list[str] = []


def record_side_effect(text: str) -> None:
    SIDE_EFFECTS.append(text)


class Payload:
    """Pickles to a call of `record_side_effect`: loading it with weights_only=False would run code."""

    def __reduce__(self):
        return (record_side_effect, ("unpickled",))


class UserNet(nn.Module):
    def __init__(self, hidden: int = 6) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, hidden, 3)
        self.bn = nn.BatchNorm2d(hidden)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(hidden * 4 * 4, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.bn(self.conv(x)))


@pytest.fixture
def saved_resnet(tmp_path: Path) -> Path:
    return save_checkpoint(build("resnet20"), tmp_path / "resnet20.pt")


def test_every_zoo_model_round_trips_bit_exactly(
    tmp_path, zoo_name, zoo_kwargs, zoo_input, randomize_bn, assert_same_outputs
) -> None:
    model = randomize_bn(build(zoo_name, num_classes=5, **zoo_kwargs(zoo_name)))
    path = save_checkpoint(model, tmp_path / "model.pt", dataset="test")
    loaded, meta = load_checkpoint(path)
    assert loaded is not model and not loaded.training
    assert meta["arch"] == zoo_name and meta["arch_kwargs"]["num_classes"] == 5
    channels, size = zoo_kwargs(zoo_name).values()
    assert meta["input_shape"] == [channels, size, size] and meta["dataset"] == "test"
    assert_same_outputs(model, loaded, zoo_input(zoo_name))


def test_file_holds_only_plain_data(saved_resnet: Path) -> None:
    payload = torch.load(saved_resnet, weights_only=True)
    assert payload.keys() == {"format", "version", "state_dict", "meta", "manifest"}
    assert (payload["format"], payload["version"]) == ("prunequant", 1)


def test_structurally_pruned_resnet_reloads_without_its_code(
    tmp_path, zoo_input, randomize_bn, assert_same_outputs
) -> None:
    model = build("resnet20")
    block = model.layer1[0]
    block.conv1 = nn.Conv2d(16, 8, 3, 1, 1, bias=False)
    block.bn1 = nn.BatchNorm2d(8)
    block.conv2 = nn.Conv2d(8, 16, 3, 1, 1, bias=False)
    model.layer2[1] = nn.Identity()
    randomize_bn(model)
    loaded, _ = load_checkpoint(save_checkpoint(model, tmp_path / "pruned.pt"))
    assert loaded.layer1[0].conv1.out_channels == 8 and loaded.layer1[0].conv2.in_channels == 8
    assert isinstance(loaded.layer2[1], nn.Identity)
    assert_same_outputs(model, loaded, zoo_input("resnet20"))


def test_user_model_loads_into_a_skeleton(tmp_path, randomize_bn, assert_same_outputs) -> None:
    model = randomize_bn(UserNet())
    path = save_checkpoint(model, tmp_path / "user.pt", input_shape=(1, 6, 6))
    with pytest.raises(ModelError, match="does not record its architecture; pass model="):
        load_checkpoint(path)
    skeleton = UserNet(hidden=2)
    loaded, meta = load_checkpoint(path, model=skeleton)
    assert loaded is skeleton and loaded.conv.out_channels == 6
    assert meta == {"input_shape": [1, 6, 6]}
    assert_same_outputs(model, loaded, torch.randn(2, 1, 6, 6))


def test_plain_state_dict_needs_and_fills_a_skeleton(tmp_path, randomize_bn, assert_same_outputs) -> None:
    model = randomize_bn(UserNet())
    path = tmp_path / "weights.pth"
    torch.save(model.state_dict(), path)
    with pytest.raises(ModelError, match="plain state_dict; pass model="):
        load_checkpoint(path)
    loaded, meta = load_checkpoint(path, model=UserNet())
    assert meta == {}
    assert_same_outputs(model, loaded, torch.randn(2, 1, 6, 6))


def test_factory_spec_models_reload_only_with_a_skeleton(
    tmp_path, monkeypatch, randomize_bn, assert_same_outputs
) -> None:
    (tmp_path / "my_nets.py").write_text(
        textwrap.dedent(
            """
            from torch import nn

            def make(num_classes=10, width=4):
                return nn.Sequential(nn.Conv2d(1, width, 3), nn.BatchNorm2d(width), nn.ReLU(),
                                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = randomize_bn(build_from_spec("my_nets:make", num_classes=3, in_channels=1, input_size=8))
    path = save_checkpoint(model, tmp_path / "spec.pt")
    with pytest.raises(ModelError, match="not in the zoo; pass model= .*--model my_nets:make"):
        load_checkpoint(path)
    loaded, meta = load_checkpoint(path, model=build_from_spec("my_nets:make", num_classes=3))
    assert meta["arch"] == "my_nets:make" and meta["arch_kwargs"] == {"num_classes": 3}
    assert_same_outputs(model, loaded, torch.randn(2, 1, 8, 8))


def test_meta_is_made_json_safe_and_arch_can_be_overridden(tmp_path: Path) -> None:
    path = save_checkpoint(
        build("lenet5", in_channels=1),
        tmp_path / "m.pt",
        metrics={"accuracy": np.float32(0.5), "curve": np.arange(2)},
        data=tmp_path,
        arch="some_other_net",
    )
    meta = torch.load(path, weights_only=True)["meta"]
    assert meta == {
        "metrics": {"accuracy": 0.5, "curve": [0, 1]},
        "data": str(tmp_path),
        "arch": "some_other_net",
    }
    with pytest.raises(ModelError, match="'some_other_net', which is not in the zoo"):
        load_checkpoint(path)


def test_unsafe_meta_fails_before_writing(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="meta is not JSON-safe"):
        save_checkpoint(build("lenet5"), tmp_path / "m.pt", note=object())
    assert list(tmp_path.iterdir()) == []


def test_pickled_objects_are_refused_without_running_them(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "prunequant", "version": 1, "meta": Payload()}, path)
    with pytest.raises(
        CheckpointError, match=r"holds Python code or objects \(.*record_side_effect\) and was refused"
    ):
        load_checkpoint(path, model=nn.Identity())
    assert SIDE_EFFECTS == []


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: np.random.default_rng(0).bytes(2048), "not a readable checkpoint"),
        (lambda data: data[: len(data) // 2], "not a readable checkpoint .*central directory"),
        (lambda data: b"", "not a readable checkpoint"),
    ],
    ids=["corrupt", "truncated", "empty"],
)
def test_unreadable_files_are_checkpoint_errors(saved_resnet: Path, damage, message: str) -> None:
    saved_resnet.write_bytes(damage(saved_resnet.read_bytes()))
    with pytest.raises(CheckpointError, match=message) as error:
        load_checkpoint(saved_resnet)
    assert "\n" not in str(error.value)


def test_missing_path_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="is not a file"):
        load_checkpoint(tmp_path)


def test_other_torch_files_and_newer_versions_are_refused(tmp_path: Path) -> None:
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="neither a prunequant checkpoint nor a state_dict"):
        load_checkpoint(tmp_path / "list.pt")
    torch.save({"format": "prunequant", "version": 1, "meta": {}}, tmp_path / "empty.pt")
    with pytest.raises(CheckpointError, match="has no state_dict"):
        load_checkpoint(tmp_path / "empty.pt")
    torch.save({"format": "prunequant", "version": 2}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="version 2, newer .*; upgrade prunequant"):
        load_checkpoint(tmp_path / "future.pt")


def test_mismatched_skeleton_names_the_first_keys(saved_resnet: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"missing: layer1\.3\.conv1\.weight, .* \(\+\d+ more\)"):
        load_checkpoint(saved_resnet, model=build("resnet32"))
    torch.save(build("lenet5", num_classes=10).state_dict(), tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match=r"shape mismatch: fc3\.weight \[10, 84\] vs model \[4, 84\]"):
        load_checkpoint(tmp_path / "sd.pt", model=build("lenet5", num_classes=4))


def test_save_is_atomic_and_leaves_no_temp_files(saved_resnet: Path, monkeypatch) -> None:
    save_checkpoint(build("resnet20"), saved_resnet)
    assert [p.name for p in saved_resnet.parent.iterdir()] == [saved_resnet.name]
    good = saved_resnet.read_bytes()

    def failing_save(obj, file, *args, **kwargs) -> None:
        file.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(CheckpointError, match="cannot write checkpoint .*No space left on device"):
        save_checkpoint(build("resnet32"), saved_resnet)
    assert saved_resnet.read_bytes() == good
    assert [p.name for p in saved_resnet.parent.iterdir()] == [saved_resnet.name]


def test_save_creates_missing_folders(tmp_path: Path) -> None:
    path = save_checkpoint(build("lenet5"), tmp_path / "runs" / "a" / "m.pt")
    assert path.is_file() and isinstance(path, Path)
