"""The README's Python quick start runs as written (on 600 Fashion-MNIST images) and ends with a sane
model: fine-tuned after channel pruning, above chance after int8, masks held through the fine-tune."""

from __future__ import annotations

import pytest

from prunequant.data import load_dataset
from prunequant.errors import DataError

FULL, TOY = 'load_dataset("fashion-mnist")', 'load_dataset("fashion-mnist", limit=600)'


@pytest.fixture
def quickstart(readme_blocks):
    (code,) = readme_blocks("## Quick start: Python")
    assert code.count(FULL) == 1
    try:
        load_dataset("fashion-mnist", limit=10)
    except DataError as err:
        pytest.skip(f"Fashion-MNIST is not installed: {err}")
    return code.replace(FULL, TOY)


@pytest.mark.slow
def test_the_python_quick_start_runs_and_ends_with_a_sane_model(quickstart, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme_quickstart"}
    exec(compile(quickstart, "README.md", "exec"), namespace)
    score, small, model = namespace["score"], namespace["small"], namespace["model"]
    assert score.top1 > 0.3 and score.warnings == ()  # chance is 10%: the fine-tune brought it back
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    report = namespace["pq"].sparsity_report(small)
    assert report.sparsity > 0.2 and report.mismatches == []  # the 50% masks held through the fine-tune
    assert namespace["pq"].memory_report(namespace["qmodel"], namespace["x"], accuracy=score.top1).pd > 0
    out = capsys.readouterr().out
    assert "None" not in out.splitlines()[-2]  # PD is printed, not None
    assert "agreement=" in out and (tmp_path / "small_int8.onnx").stat().st_size > 0
