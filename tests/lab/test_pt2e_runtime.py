"""The torch-native int8 path as an opt-in lab runtime: `[run] runtimes` enables "pt2e-int8", whose .pt2
program is scored itself, timed compiled in its worker process with its runtime recorded, and shipped like
any other form; a worker that cannot compile leaves the form failed with its reason, the others counting.
The end-to-end run compiles a tiny CNN a few times (about a minute idle, minutes under load): marked slow
like tests/export/test_pt2e_compile.py."""

from __future__ import annotations

import json
import sys

import pytest

from prunequant.errors import ConfigError
from prunequant.lab import load_recipe, parse_recipe, run_recipe
from prunequant.lab.env import environment
from prunequant.lab.runtimes import RUNTIMES
from prunequant.lab.store import DB_NAME, ResultsStore
from prunequant.report import load_run
from prunequant.report.tables import deploy_table
from prunequant.training import evaluate

FAST_TIMING = "deploy_batch = 8\ntiming_rounds = 2\ntiming_repeats = 2\n"
PT2E_ENGINE = "torch-int8 (pt2e+inductor)"


def with_runtimes(base: str, runtimes: str) -> str:
    return base.replace("threads = 1\n", f"threads = 1\n{FAST_TIMING}runtimes = {runtimes}\n")


def test_recipes_deploy_on_onnxruntime_unless_they_opt_in(tiny_base):
    assert parse_recipe(tiny_base).run.runtimes == ("onnxruntime-fp32", "onnxruntime-int8")
    chosen = parse_recipe(with_runtimes(tiny_base, '["pt2e-int8", "onnxruntime-int8"]')).run.runtimes
    assert chosen == ("pt2e-int8", "onnxruntime-int8")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('["pt2e"]', "[run] runtimes: unknown runtime 'pt2e'; did you mean 'pt2e-int8'? (valid: "),
        ('["pt2e-int8", "pt2e-int8"]', "[run] runtimes: 'pt2e-int8' is listed twice"),
        ("[]", "[run] runtimes must name at least one runtime (valid: "),
        ('"pt2e-int8"', "[run] runtimes must be a list of strings, got 'pt2e-int8'"),
    ],
)
def test_a_bad_runtimes_list_is_one_config_error_on_its_line(tiny_base, value, message):
    with pytest.raises(ConfigError) as caught:
        parse_recipe(with_runtimes(tiny_base, value), name="tiny.toml")
    text = str(caught.value)
    assert text.startswith("tiny.toml:") and message in text and "\n" not in text
    if "valid:" in message:
        assert text.endswith("(valid: onnxruntime-fp32, onnxruntime-int8, pt2e-int8)")


def test_a_worker_that_cannot_compile_fails_its_form_and_the_others_still_count(
    tmp_path, tiny_base, monkeypatch
):
    pytest.importorskip("torchao", reason="the PT2E path needs torchao (pip install 'prunequant[native]')")
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(with_runtimes(tiny_base, '["onnxruntime-int8", "pt2e-int8"]'))
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the worker process exits at once
    run_recipe(load_recipe(recipe), tmp_path / "run", progress=False)
    with ResultsStore(tmp_path / "run" / DB_NAME, read_only=True) as store:
        (row,) = store.rows()
        card = store.get_meta("ship")
    onnx, pt2e = row.extra["deploy"]["forms"]
    assert onnx["runtime"] == "onnxruntime-int8" and onnx["speed"]["8"]["runtime"] == "onnxruntime"
    assert pt2e["runtime"] == "pt2e-int8" and pt2e["method"] == "pt2e" and "speed" not in pt2e
    assert pt2e["error"].startswith("ExportError: cannot compile") and "the worker exited" in pt2e["error"]
    assert card["shipped"] and card["runtime"] == "onnxruntime-int8"
    table = deploy_table(load_run(tmp_path / "run"))
    cells = {row[1][0]: row[-1][0] for row in table.rows}
    assert cells["pt2e-int8"].startswith("no; ExportError: cannot compile")


@pytest.mark.slow
def test_pt2e_forms_are_scored_on_the_program_timed_compiled_and_shipped(tmp_path, tiny_base):
    pytest.importorskip("torchao", reason="the PT2E path needs torchao (pip install 'prunequant[native]')")
    from prunequant.export.pt2e_artifact import EagerProgram

    recipe = tmp_path / "tiny.toml"
    recipe.write_text(with_runtimes(tiny_base, '["pt2e-int8"]') + "\n[post_quant]\nbits = [8]\n")
    run_dir = tmp_path / "run"
    run_recipe(load_recipe(recipe), run_dir, progress=False)
    env = environment(load_recipe(recipe))
    with ResultsStore(run_dir / DB_NAME, read_only=True) as store:
        rows = {row.stage: row for row in store.rows()}
    for stage, source in (("profile", "float model"), ("post_quant", "prunequant fake-quant model")):
        (form,) = rows[stage].extra["deploy"]["forms"]
        assert form["runtime"] == "pt2e-int8" and form["precision"] == "int8" and "error" not in form
        assert form["source"].startswith(source) and form["layers"] == "7 of 7 conv/linear layers int8"
        assert form["calibration"].startswith("PT2E's own observers on the same 4 calibration batches")
        assert ("not kept" in form["calibration"]) == (stage == "post_quant")
        artifact = run_dir / "artifacts" / rows[stage].trial_id / form["file"]
        assert form["file"] == "model.int8.pt2" and form["bytes"] == artifact.stat().st_size
        again = evaluate(EagerProgram(artifact), env.loaders.test, env.task)
        assert again.metrics == pytest.approx(form["metrics"])
        assert set(form["speed"]) == {"1", "8"} and set(form["first_call_s"]) == {"1", "8"}
        for speed in form["speed"].values():
            assert speed["runtime"] == PT2E_ENGINE and speed["speedup"] > 0 and speed["original_ms"] > 0
    card = json.loads((run_dir / "ship" / "model_card.json").read_text())
    assert card["shipped"] and card["file"] == "ship/model.int8.pt2" and card["runtime"] == "pt2e-int8"
    assert card["engine"] == PT2E_ENGINE and card["usage"] == RUNTIMES["pt2e-int8"].usage
    assert {speed["runtime"] for speed in card["speed"].values()} == {PT2E_ENGINE}
    shipped = evaluate(EagerProgram(run_dir / card["file"]), env.loaders.test, env.task)
    assert shipped.metrics == pytest.approx(card["test"])
