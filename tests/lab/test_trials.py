import hashlib

import pytest

from prunequant.lab import TrialSpec, TrialTask, parse_recipe, run_trial
from prunequant.lab.env import environment, model_from_bytes, model_to_bytes
from prunequant.lab.trials import trial_id


def test_trial_ids_are_a_stable_hash_of_stage_and_canonical_config():
    config = {"kind": "compress", "steps": [{"op": "prune", "amount": 0.1}]}
    text = '{"config":{"kind":"compress","steps":[{"amount":0.1,"op":"prune"}]},"stage":"post_prune"}'
    assert (
        trial_id("post_prune", config) == hashlib.sha256(text.encode()).hexdigest()[:16] == "8e275af1a9c6bfb8"
    )
    reordered = {"steps": [{"amount": 0.1, "op": "prune"}], "kind": "compress"}
    assert trial_id("post_prune", reordered) == "8e275af1a9c6bfb8"
    assert trial_id("aware_prune", config) != trial_id("post_prune", config)
    spec = TrialSpec("post_prune", "label", {**config, "source": "abc"})
    assert spec.sources == ["abc"] and TrialSpec("bench", "b", {"sources": ["x", "y"]}).sources == ["x", "y"]


@pytest.fixture(scope="module")
def baseline(tiny_base):
    recipe = parse_recipe(tiny_base)
    task = TrialTask(TrialSpec("profile", "original", {"kind": "baseline"}), recipe)
    return recipe, run_trial(task)


def test_the_baseline_trial_trains_profiles_and_measures(baseline):
    recipe, outcome = baseline
    assert outcome.extra["trained_in_run"] is True and len(outcome.extra["history"]) == recipe.baseline.epochs
    assert [g["name"] for g in outcome.extra["profile"]["groups"]] == ["features", "pool", "classifier"]
    assert (
        outcome.metrics["params"]
        == outcome.metrics["nonzero_params"]
        == outcome.extra["profile"]["total"]["params"]
    )
    assert outcome.metrics["metrics"]["top1"] == outcome.metrics["score"] > 0.5 and outcome.duration_s > 0
    model, meta = model_from_bytes(outcome.checkpoint)
    assert meta["arch"] == "small_cnn" and meta["input_shape"] == [1, 8, 8]


def test_a_trial_gives_the_same_numbers_whatever_ran_before_it(baseline):
    recipe, outcome = baseline
    spec = TrialSpec(
        "aware_quant",
        "q",
        {
            "kind": "compress",
            "source": "base",
            "finetune": {"epochs": 1, "lr": 0.1, "refine_epochs": 0},
            "steps": [{"op": "prune", "amount": 0.3}, {"op": "quantize", "w_bits": 4}],
        },
    )
    task = TrialTask(spec, recipe, {"base": outcome.checkpoint})
    first = run_trial(task)
    environment(recipe).calibration(3)  # other work in the same process must not shift the shuffling
    second = run_trial(task)
    keys = ("score", "metrics", "loss", "val_score", "nonzero_params", "weight_mb", "file_bytes")
    assert {k: first.metrics[k] for k in keys} == {k: second.metrics[k] for k in keys}
    assert first.metrics["w_bits"] == 4 and first.extra["steps"]["sparsity"] == pytest.approx(0.3, abs=1e-3)


def test_model_bytes_round_trip(baseline):
    _, outcome = baseline
    model, meta = model_from_bytes(outcome.checkpoint)
    assert model_from_bytes(model_to_bytes(model, **meta))[1] == meta


def test_a_trial_leaves_the_callers_torch_thread_count_as_it_was(tiny_base):
    import torch

    recipe = parse_recipe(tiny_base)  # [run] threads = 1
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run_trial(TrialTask(TrialSpec("profile", "original", {"kind": "baseline"}), recipe))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
