"""A Ctrl-C'd unstructured sweep leaves valid partial CSV, table and plot saying how far it got."""

from __future__ import annotations

import csv

import pytest

import prunequant.pruning.unstructured.sweep as sweep_module
from prunequant.pruning.unstructured import sweep_unstructured


def test_interrupted_sweep_leaves_valid_partial_files(
    tiny_model, blob_loaders, tmp_path, monkeypatch, capsys
):
    _, val = blob_loaders
    real, calls = sweep_module.prune_and_finetune, []

    def interrupt_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "prune_and_finetune", interrupt_on_third)
    with pytest.raises(KeyboardInterrupt):
        sweep_unstructured(tiny_model, val, [0.0, 0.3, 0.6], sweep_dir=tmp_path)
    with open(tmp_path / "sweep.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["scope"], float(row["amount"])) for row in rows] == [("global", 0.0), ("global", 0.3)]
    table = (tmp_path / "sweep.md").read_text()
    assert table.startswith("partial: 2 of 6 levels") and table.count("| global |") == 2
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert "sweep interrupted: partial: 2 of 6 levels" in capsys.readouterr().err


def test_a_finished_sweep_is_not_marked_partial(tiny_model, blob_loaders, tmp_path):
    rows = sweep_unstructured(tiny_model, blob_loaders[1], [0.0, 0.5], scopes=("layer",), sweep_dir=tmp_path)
    table = (tmp_path / "sweep.md").read_text()
    assert len(rows) == 2 and table.startswith("| scope |") and "partial" not in table
