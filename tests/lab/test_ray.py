"""The Ray backend runs the same trial function as the local one: same seed, same results."""

import pytest

from prunequant.lab import ResultsStore, load_recipe, run_recipe

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

SWEEP = """
[post_prune]
amounts = [0.3, 0.6]

[aware_quant]
bits = [4]
epochs = 1
refine_epochs = 0
"""
SAME = (
    "score",
    "metrics",
    "loss",
    "val_score",
    "params",
    "nonzero_params",
    "macs",
    "weight_mb",
    "file_bytes",
    "pd",
)


def _results(run_dir):
    with ResultsStore(run_dir / "results.sqlite") as store:
        return [(row.trial_id, row.status, {key: row.get(key) for key in SAME}) for row in store.rows()]


def test_ray_and_local_backends_agree(recipe_file, tmp_path):
    recipe = load_recipe(recipe_file(SWEEP))
    run_recipe(recipe, tmp_path / "local", progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = run_recipe(recipe, tmp_path / "ray", backend="ray", progress=False)
    finally:
        ray.shutdown()
    assert (summary["trials"], summary["done"], summary["failed"]) == (4, 4, 0)
    local, remote = _results(tmp_path / "local"), _results(tmp_path / "ray")
    assert [r[1] for r in remote] == ["done"] * 4
    assert remote == local
    assert sorted(p.name for p in (tmp_path / "ray" / "checkpoints").iterdir()) == sorted(
        f"{r[0]}.pt" for r in local
    )
