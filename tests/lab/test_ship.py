"""The run ships its best deployable form: ship/ holds the file and a model card measured on that file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prunequant.export.runtime import OnnxRunner
from prunequant.lab import load_recipe, run_recipe
from prunequant.lab.env import environment
from prunequant.lab.runtimes import NO_SPEED_GAIN
from prunequant.lab.store import DB_NAME, ResultsStore
from prunequant.training import evaluate

STAGES = """
[post_prune]
amounts = [0.5]

[post_quant]
bits = [8]
"""

FAST_TIMING = "deploy_batch = 8\ntiming_rounds = 2\ntiming_repeats = 2\n"


@pytest.fixture(scope="module")
def shipped_run(tmp_path_factory: pytest.TempPathFactory, tiny_base: str) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("ship")
    recipe = folder / "tiny.toml"
    recipe.write_text(tiny_base.replace("threads = 1\n", "threads = 1\n" + FAST_TIMING) + STAGES)
    summary = run_recipe(load_recipe(recipe), folder / "run", progress=False)
    return folder / "run", summary


def test_ship_dir_holds_the_file_and_a_complete_model_card(shipped_run):
    run_dir, summary = shipped_run
    card = json.loads((run_dir / "ship" / "model_card.json").read_text())
    assert card["shipped"] is True and summary["ship"]["file"] == card["file"]
    files = {card["file"], *(entry["file"] for entry in card["per_batch"].values())}
    assert sorted(p.name for p in (run_dir / "ship").iterdir()) == sorted(
        ["model_card.json", *(Path(name).name for name in files)]
    )
    assert set(card["per_batch"]) == {"1", "8"} and card["per_batch"]["8"]["file"] == card["file"]
    assert card["runtime"] in ("onnxruntime-fp32", "onnxruntime-int8") and card["file"].endswith(".onnx")
    assert card["batches"] == [1, 8] and card["threads"] == 1 and card["objective"] == "latency"
    assert set(card["speed"]) == {"1", "8"}
    for speed in card["speed"].values():
        assert 0 < speed["p10"] <= speed["p90"] and speed["speedup"] > 0 and speed["original_ms"] > 0
    assert card["conditions"]["rounds"] == 2 and "under_load" in card["conditions"]
    assert len(card["recipe_hash"]) == 16 and card["budget"]["metric"] == "top1"
    assert card["bytes"] == (run_dir / card["file"]).stat().st_size
    assert 0.0 <= card["parity"]["agreement"] <= 1.0
    with ResultsStore(run_dir / DB_NAME, read_only=True) as store:
        assert store.get_meta("ship")["file"] == card["file"]
        assert (
            store.get_meta("best") == card["trial_id"] and store.get_meta("best_runtime") == card["runtime"]
        )


def test_model_card_metric_is_the_shipped_file_re_evaluated(shipped_run):
    run_dir, _ = shipped_run
    card = json.loads((run_dir / "ship" / "model_card.json").read_text())
    env = environment(load_recipe(run_dir / ".." / "tiny.toml"))
    again = evaluate(OnnxRunner(run_dir / card["file"], 1), env.loaders.test, env.task)
    assert again.metrics == pytest.approx(card["test"]) and again.n == card["test_n"]


def test_every_candidate_records_its_forms_and_masked_zeros_say_no_speed_gain(shipped_run):
    run_dir, _ = shipped_run
    with ResultsStore(run_dir / DB_NAME, read_only=True) as store:
        rows = {row.stage: row for row in store.rows()}
    masked = rows["post_prune"].extra["deploy"]
    assert masked["forms"] == [] and masked["no_speed_gain"] == NO_SPEED_GAIN
    assert rows["post_prune"].get("speedup") is None
    quant = rows["post_quant"].extra["deploy"]["forms"]
    assert [f["runtime"] for f in quant] == ["onnxruntime-int8"] and quant[0]["method"] == "ours"
    original = rows["profile"].extra["deploy"]["forms"]
    assert [f["runtime"] for f in original] == ["onnxruntime-fp32", "onnxruntime-int8"]
    assert original[1]["method"] == "ort"
    for row in (rows["profile"], rows["post_quant"]):
        for found in row.extra["deploy"]["forms"]:
            assert (run_dir / "artifacts" / row.trial_id / found["file"]).stat().st_size == found["bytes"]
            assert found["val_score"] is not None and set(found["speed"]) == {"1", "8"}


class _Store:
    """The two store calls shipping makes, over fixed rows."""

    def __init__(self, rows: list) -> None:
        self._rows, self.meta = rows, {}

    def rows(self) -> list:
        return self._rows

    def set_meta(self, key: str, value: object) -> None:
        self.meta[key] = value


def test_nothing_within_budget_writes_a_card_with_the_closest_and_no_model(
    tmp_path, tiny_base, make_row, forms_row, make_form
):
    from types import SimpleNamespace

    from prunequant.lab.env import budget_of
    from prunequant.lab.ship import run_ship

    (tmp_path / "r.toml").write_text(tiny_base)
    recipe = load_recipe(tmp_path / "r.toml")
    baseline = make_row("profile", 0.90)
    near = forms_row("structured", 0.9, make_form("onnxruntime-int8", 0.80, 60, 9.0))
    rows = [baseline, forms_row("structured", 0.9, make_form("onnxruntime-fp32", 0.5, 10, 20.0)), near]
    (tmp_path / "run" / "ship").mkdir(parents=True)
    (tmp_path / "run" / "ship" / "model.int8.onnx").write_bytes(b"an earlier run's choice")
    store = _Store(rows)
    session = SimpleNamespace(
        recipe=recipe,
        run_dir=tmp_path / "run",
        store=store,
        budget=budget_of(recipe),
        baseline=lambda: baseline,
    )
    card = run_ship(session)
    assert [p.name for p in (tmp_path / "run" / "ship").iterdir()] == ["model_card.json"]
    assert card["shipped"] is False and card["reason"] == "no deployable form meets the budget"
    assert card["closest"]["trial_id"] == near.trial_id and card["closest"]["missed_by"] == pytest.approx(
        0.05
    )
    assert card["fastest_any_budget"]["speed"]["64"]["speedup"] == 20.0
    assert json.loads((tmp_path / "run" / "ship" / "model_card.json").read_text()) == store.meta["ship"]


def _profile_with_speeds(row, speeds: dict[str, dict[str, float]]):
    """The profile row with its forms' median speedups replaced: {runtime: {batch: speedup}}."""
    import copy
    import dataclasses

    extra = copy.deepcopy(row.extra)
    for form in extra["deploy"]["forms"]:
        for batch, value in speeds[form["runtime"]].items():
            form["speed"][batch].update(speedup=value, p10=value, p90=value)
    return dataclasses.replace(row, extra=extra)


def test_a_faster_form_at_batch_1_is_shipped_too_evaluated_and_listed(shipped_run, tmp_path):
    import shutil
    from types import SimpleNamespace

    from prunequant.lab.budget import Budget
    from prunequant.lab.ship import run_ship

    run_dir = tmp_path / "run"
    shutil.copytree(shipped_run[0], run_dir)
    recipe = load_recipe(shipped_run[0] / ".." / "tiny.toml")
    with ResultsStore(run_dir / DB_NAME, read_only=True) as store:
        profile = next(row for row in store.rows() if row.stage == "profile")
    env = environment(recipe)
    session = SimpleNamespace(
        recipe=recipe, run_dir=run_dir, budget=Budget(env.task.metric(), 1.0), baseline=lambda: profile
    )
    split = {"onnxruntime-fp32": {"1": 2.0, "8": 10.0}, "onnxruntime-int8": {"1": 20.0, "8": 5.0}}
    session.store = _Store([_profile_with_speeds(profile, split)])
    card = run_ship(session)
    assert card["file"] == "ship/model.fp32.onnx" and card["runtime"] == "onnxruntime-fp32"
    assert sorted(p.name for p in (run_dir / "ship").iterdir()) == [
        "model.fp32.onnx",
        "model.int8.onnx",
        "model_card.json",
    ]
    at_1, at_8 = card["per_batch"]["1"], card["per_batch"]["8"]
    assert at_8["main"] and at_8["file"] == card["file"] and at_8["test"] == card["test"]
    assert at_8["speedup"] == card["speed"]["8"]["speedup"] and at_8["trial_speedup"] == 10.0
    assert not at_1["main"] and (at_1["file"], at_1["runtime"]) == (
        "ship/model.int8.onnx",
        "onnxruntime-int8",
    )
    assert at_1["trial_speedup"] == 20.0 and at_1["p10"] <= at_1["p90"] and set(at_1["speed"]) == {"1", "8"}
    assert at_8["confirmed"] and at_1["confirmed"] == (at_1["speedup"] > card["speed"]["1"]["speedup"])
    again = evaluate(OnnxRunner(run_dir / at_1["file"], 1), env.loaders.test, env.task)
    assert again.metrics == pytest.approx(at_1["test"]) and again.n == at_1["test_n"]
    assert at_1["change"] == pytest.approx(100 * (again.metrics["top1"] - card["original_test"]["top1"]))
    assert at_1["bytes"] == (run_dir / at_1["file"]).stat().st_size
    assert [entry["runtime"] for entry in at_1["passed"]] == ["onnxruntime-fp32"]
    assert "tie floor" in card["per_batch_rule"] and card["selection"]
    # resumed with the same choices: the card stands; once int8 is no faster at batch 1, its file goes
    assert run_ship(session) == card
    same = {"onnxruntime-fp32": {"1": 2.0, "8": 10.0}, "onnxruntime-int8": {"1": 2.1, "8": 5.0}}
    session.store = _Store([_profile_with_speeds(profile, same)])
    card = run_ship(session)
    assert all(entry["file"] == "ship/model.fp32.onnx" for entry in card["per_batch"].values())
    assert sorted(p.name for p in (run_dir / "ship").iterdir()) == ["model.fp32.onnx", "model_card.json"]
