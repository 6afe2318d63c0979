"""Seed 004's lab stages on a tiny ResNet-20 (synthetic data): [slimming] (sparsity training, then channel
pruning by |gamma|) and [layer_prune] (whole residual blocks, lowest mean |gamma| first), sharing one
sparsity-training trial; their sections' checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from prunequant.errors import ConfigError
from prunequant.lab import load_recipe, parse_recipe, run_recipe
from prunequant.lab.store import ResultsStore
from prunequant.models import load_checkpoint
from prunequant.pruning.structured.layer_pruning import BLOCK_SCORES

STAGES = """
[slimming]
penalty = 0.05
sparsity_epochs = 2
amounts = [0.5]
epochs = 1
refine_epochs = 0

[layer_prune]
penalty = 0.05
sparsity_epochs = 2
blocks = [2]
epochs = 1
refine_epochs = 0
"""


@pytest.fixture(scope="session")
def base(tiny_variant) -> str:
    """The tiny recipe on a resnet20, quicker: one baseline epoch on 64 samples."""
    return tiny_variant(arch="resnet20", kwargs=None, max_drop=0.5, size=64, lr=0.05, epochs=1, repeats=1)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, base: str) -> tuple[Path, list]:
    folder = tmp_path_factory.mktemp("seed004")
    (folder / "tiny.toml").write_text(base + STAGES)
    recipe = load_recipe(folder / "tiny.toml")
    assert recipe.stages() == ["profile", "slimming", "layer_prune"]
    run_recipe(recipe, folder / "run", progress=False)
    with ResultsStore(folder / "run" / "results.sqlite", read_only=True) as store:
        rows = store.rows()
    assert all(row.status == "done" for row in rows), {row.label: row.error for row in rows}
    return folder / "run", rows


def test_one_shared_sparsity_training_shrinks_the_gammas(run):
    _, rows = run
    baseline = next(row for row in rows if row.stage == "profile")
    sparse = [row for row in rows if row.label.startswith("sparsity training")]
    assert len(sparse) == 1 and sparse[0].stage == "slimming"
    assert sparse[0].config["source"] == baseline.trial_id
    stats = sparse[0].extra["steps"]
    assert stats["penalty"] == 0.05
    assert stats["bn_gamma_after"]["mean_abs"] < stats["bn_gamma_before"]["mean_abs"]
    assert stats["bn_gamma_after"]["channels"] == stats["bn_gamma_before"]["channels"]
    pruned = [row for row in rows if row.stage in ("slimming", "layer_prune") and row is not sparse[0]]
    assert len(pruned) == 4 and all(row.config["source"] == sparse[0].trial_id for row in pruned)
    labels = sorted(row.label for row in pruned)
    assert labels == [
        "remove 2 residual blocks (bn_gamma) @ lr 0.05",
        "remove 2 residual blocks (bn_gamma) as pruned",
        "slimming 50% (global BN gamma) @ lr 0.05",
        "slimming 50% (global BN gamma) as pruned",
    ]
    assert all(row.config["finetune"] is None for row in pruned if row.label.endswith("as pruned"))


def test_slimming_removes_channels_by_gamma(run):
    _, rows = run
    sparse = next(row for row in rows if row.label.startswith("sparsity training"))
    slim = [row for row in rows if row.label.startswith("slimming")]
    for row in slim:
        (step,) = row.config["steps"]
        assert step == {"op": "channels", "amount": 0.5, "importance": "bn_gamma", "allocation": "global",
                        "round_to": 1}  # fmt: skip
        assert row.get("params") < sparse.get("params") and row.get("macs") < sparse.get("macs")
        assert row.extra["steps"]["channels"][0]["importance"] == "bn_gamma"


def test_layer_prune_removes_the_lowest_gamma_blocks(run):
    run_dir, rows = run
    sparse = next(row for row in rows if row.label.startswith("sparsity training"))
    model, _ = load_checkpoint(run_dir / sparse.checkpoint)
    for row in (row for row in rows if row.stage == "layer_prune"):
        info = row.extra["steps"]["layers"]
        scores = info["scores"]
        expected = {name: BLOCK_SCORES["bn_gamma"](name, model.get_submodule(name)) for name in scores}
        assert scores == pytest.approx(expected)  # ranked on the sparse model's gammas
        lowest = sorted(scores, key=scores.get)[:2]
        assert sorted(info["removed_blocks"]) == sorted(lowest) and info["blocks"] == 2
        assert row.get("params") < sparse.get("params") and row.get("macs") < sparse.get("macs")
        pruned, _ = load_checkpoint(run_dir / row.checkpoint)  # the shorter model reloads
        assert all(type(pruned.get_submodule(name)).__name__ == "Identity" for name in lowest)


def test_no_sparsity_training_ranks_the_baseline(tmp_path, base):
    path = tmp_path / "plain.toml"
    table = "[layer_prune]\nsparsity_epochs = 0\nblocks = [1]\nepochs = 0\nrefine_epochs = 0\n"
    path.write_text(base + "\n" + table)
    run_recipe(load_recipe(path), tmp_path / "run", progress=False)
    with ResultsStore(tmp_path / "run" / "results.sqlite", read_only=True) as store:
        rows = store.rows()
    baseline = next(row for row in rows if row.stage == "profile")
    assert [row.stage for row in rows] == ["profile", "layer_prune"]  # no sparsity trial, no fine-tune twin
    assert rows[1].status == "done" and rows[1].config["source"] == baseline.trial_id
    assert rows[1].label == "remove 1 residual block (bn_gamma) as pruned"


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ("[slimming]\npenalty = 0\namounts = [0.5]\n", "penalty"),
        ("[slimming]\namounts = [0.5]\nallocation = 'sensitivity'\n", "allocation"),
        ("[slimming]\namounts = []\n", "amounts"),
        ("[layer_prune]\nblocks = []\n", "blocks"),
        ("[layer_prune]\nblocks = [0]\n", "blocks[0]"),
        ("[layer_prune]\nblocks = [1]\nimportance = 'taylor'\n", "importance"),
        ("[layer_prune]\nblocks = [1]\nsparsity_epochs = -1\n", "sparsity_epochs"),
    ],
)
def test_bad_sections_name_the_key(table, words, base):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_recipe(base + "\n" + table)
