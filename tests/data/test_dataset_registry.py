import numpy as np
import pytest

from prunequant.data import RawDataset, available_datasets, load_dataset, register_dataset, registry
from prunequant.errors import ConfigError

FAMILIES = {"cifar10", "cifar100", "digits", "fashion-mnist", "imagefolder", "mnist", "synthetic"}


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(registry, "_LOADERS", dict(registry._LOADERS))
    monkeypatch.setattr(registry, "_BUILT_IN", set(registry._BUILT_IN))


def test_every_family_registers_itself():
    assert set(available_datasets()) >= FAMILIES
    assert available_datasets() == sorted(available_datasets())


def test_unknown_name_lists_the_available_datasets():
    with pytest.raises(
        ConfigError, match="unknown dataset 'imagenet'; available: .*fashion-mnist.*synthetic"
    ):
        load_dataset("imagenet")


def test_names_are_case_and_underscore_insensitive():
    assert load_dataset("SYNTHETIC", size=8).name == "synthetic"


def test_unknown_option_names_the_dataset_and_its_options():
    with pytest.raises(
        ConfigError, match="'synthetic' has no option 'sizes'.*num_classes, input_shape, size"
    ):
        load_dataset("synthetic", sizes=8)
    with pytest.raises(ConfigError, match="'mnist' has no option 'augment'; its options are: normalize"):
        load_dataset("mnist", augment=True)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"val_fraction": 1.0}, "val_fraction"), ({"limit": 0}, "limit"), ({"seed": -1}, "seed")],
)
def test_bad_common_arguments_raise_config_error(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        load_dataset("synthetic", **kwargs)


def test_a_registered_loader_is_split_and_normalised(scratch_registry):
    @register_dataset("ramp")
    def ramp(data_dir, seed, *, count: int = 10):
        images = np.arange(count, dtype=np.uint8).reshape(count, 1, 1, 1)
        return RawDataset(images, np.arange(count) % 2, ("even", "odd"), test_fraction=0.2)

    splits = load_dataset("ramp", count=20, val_fraction=0.25)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (12, 4, 4)
    assert splits.classes == ("even", "odd") and splits.input_shape == (1, 1, 1)
    with pytest.raises(ConfigError, match="already registered"):
        register_dataset("Ramp")(ramp)


def test_a_data_dir_is_refused_by_built_in_datasets_and_kept_by_those_that_read_files(
    scratch_registry, tmp_path
):
    for name in ("synthetic", "digits"):
        with pytest.raises(ConfigError, match=f"dataset '{name}' is built in and reads no files"):
            load_dataset(name, tmp_path)

    @register_dataset("made", reads_files=False)
    def made(data_dir, seed):
        return RawDataset(np.zeros((10, 1, 1, 1), np.uint8), np.arange(10) % 2, ("a", "b"), test_fraction=0.2)

    @register_dataset("read")
    def read(data_dir, seed):
        assert data_dir == tmp_path
        return made(None, seed)

    with pytest.raises(ConfigError, match=f"so data_dir {tmp_path} would not be used; drop data_dir"):
        load_dataset("made", tmp_path)
    assert len(load_dataset("made").train) and len(load_dataset("read", tmp_path).train)
