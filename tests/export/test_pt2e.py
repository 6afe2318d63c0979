"""PT2E int8 (.pt2): quantize, save, reload and run the converted graph in eager; coverage; refusals.

These tests never compile (test_pt2e_compile.py holds the compiled ones): the reloaded q/dq graph run
eagerly computes the reference int8 arithmetic that inductor lowers to integer kernels.
"""

from __future__ import annotations

import io
import zipfile

import pytest
import torch
from torch import nn

pytest.importorskip("torchao", reason="the PT2E path needs torchao (pip install 'prunequant[native]')")

from prunequant.errors import ExportError  # noqa: E402
from prunequant.export.pt2e_artifact import load_program  # noqa: E402
from prunequant.export.pt2e_int8 import RUNTIME, export_pt2e_int8  # noqa: E402
from prunequant.tasks import ClassificationTask, OutputComparison, run_model  # noqa: E402

from .conftest import SAMPLE_SHAPE  # noqa: E402


def eager_parity(program_path, reference: nn.Module, loader, task=None, batches: int = 4) -> dict:
    """The task's comparison of the reloaded .pt2 (run eagerly) with `reference` on `batches` batches."""
    task = task or ClassificationTask()
    candidate = load_program(program_path).module()
    comparison = task.comparison()
    with torch.inference_mode():
        for index, batch in enumerate(loader):
            if index == batches:
                break
            inputs, target = task.split(batch)
            comparison.update(run_model(reference, inputs), run_model(candidate, inputs), target)
    return comparison.compute()


def test_float_cnn_round_trips_with_every_layer_int8(trained_tiny, blob_data, tmp_path):
    result = export_pt2e_int8(
        trained_tiny, tmp_path / "tiny.pt2", torch.randn(1, *SAMPLE_SHAPE), blob_data.train, calib_batches=4
    )
    assert result.runtime == RUNTIME and result.precision == "int8" and result.calib_batches == 4
    assert result.layers == "7 of 7 conv/linear layers int8" and result.float_layers == {}
    assert "X86InductorQuantizer" in result.quantizer and "per-channel" in result.quantizer
    assert result.source == "float model" and result.bytes == (tmp_path / "tiny.pt2").stat().st_size
    parity = eager_parity(result.output, trained_tiny, blob_data.test)
    assert parity["agreement"] >= 0.95
    assert parity["mean_abs_diff"] < 0.05 * _mean_abs_logit(trained_tiny, blob_data.test)


def test_fake_quant_model_is_requantized_and_compared_to_itself(quantized_tiny, blob_data, tmp_path):
    result = export_pt2e_int8(
        quantized_tiny, tmp_path / "ptq.pt2", torch.randn(1, *SAMPLE_SHAPE), blob_data.train, calib_batches=4
    )
    assert result.source.startswith("prunequant fake-quant model (weights 8-bit, activations 8-bit)")
    assert "parity is against the fake-quant model" in result.source
    assert result.layers == "7 of 7 conv/linear layers int8"
    parity = eager_parity(result.output, quantized_tiny, blob_data.test)
    assert parity["agreement"] >= 0.95
    assert parity["mean_abs_diff"] < 0.05 * _mean_abs_logit(quantized_tiny, blob_data.test)


def _mean_abs_logit(model: nn.Module, loader) -> float:
    inputs, _ = next(iter(loader))
    with torch.inference_mode():
        return float(model(inputs).abs().mean())


class TwoInputs(nn.Module):
    """Two images of different sizes; a transposed conv that X86InductorQuantizer leaves float."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.small = nn.Conv2d(1, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.large = nn.Conv2d(1, 4, 3, stride=2, padding=1)

    def forward(self, small: torch.Tensor, large: torch.Tensor) -> torch.Tensor:
        return self.up(torch.relu(self.small(small))) + self.large(large)


def _two_input_batches(count: int, as_dict: bool) -> list:
    generator = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(count):
        small, large = (
            torch.randn(8, 1, 8, 8, generator=generator),
            torch.randn(8, 1, 32, 32, generator=generator),
        )
        inputs = {"small": small, "large": large} if as_dict else (small, large)
        batches.append((inputs, None))
    return batches


@pytest.mark.parametrize("as_dict", [False, True], ids=["tuple", "dict"])
def test_two_input_model_names_its_float_layer_and_matches(as_dict, tmp_path):
    model = TwoInputs().eval()
    batches = _two_input_batches(4, as_dict)
    example = batches[0][0]
    result = export_pt2e_int8(model, tmp_path / "two.pt2", example, batches)
    assert result.layers == "2 of 3 conv/linear layers int8"
    assert result.float_layers == {"up": "input and weight not quantized by the quantizer"}
    # a batch size the export never saw runs too: the batch dimension is dynamic
    odd = {k: v[:3] for k, v in example.items()} if as_dict else tuple(t[:3] for t in example)
    assert run_model(load_program(result.output).module(), odd).shape == (3, 4, 16, 16)
    comparison = OutputComparison()
    with torch.inference_mode():
        for inputs, _ in batches:
            comparison.update(run_model(model, inputs), _run(result.output, inputs))
        scale = float(run_model(model, example).abs().mean())
    figures = comparison.compute()
    assert figures["mean_abs_diff"] < 0.05 * scale and figures["max_abs_diff"] < 0.5 * scale


def _run(path, inputs):
    return run_model(load_program(path).module(), inputs)


def test_empty_calibration_is_refused(trained_tiny, tmp_path):
    with pytest.raises(ExportError, match="no batches"):
        export_pt2e_int8(trained_tiny, tmp_path / "x.pt2", torch.randn(1, *SAMPLE_SHAPE), [])
    assert not (tmp_path / "x.pt2").exists()


@pytest.fixture(scope="module")
def artifact_bytes(tmp_path_factory) -> bytes:
    model = TwoInputs().eval()
    batches = _two_input_batches(1, as_dict=False)
    path = tmp_path_factory.mktemp("pt2") / "two.pt2"
    export_pt2e_int8(model, path, batches[0][0], batches)
    return path.read_bytes()


def test_corrupt_or_foreign_files_are_refused_in_one_line(artifact_bytes, tmp_path):
    garbage, truncated, plain_zip = tmp_path / "g.pt2", tmp_path / "t.pt2", tmp_path / "z.pt2"
    garbage.write_bytes(b"not a model at all")
    truncated.write_bytes(artifact_bytes[: len(artifact_bytes) // 2])
    with zipfile.ZipFile(plain_zip, "w") as archive:
        archive.writestr("hello.txt", "hi")
    for path, message in (
        (garbage, "not a readable torch.export"),
        (truncated, "not a readable torch.export"),
        (plain_zip, "not a torch.export"),
        (tmp_path / "missing.pt2", "no such .pt2 file"),
    ):
        with pytest.raises(ExportError, match=message) as caught:
            load_program(path)
        assert "\n" not in str(caught.value)


class Payload:
    """Not a tensor: torch.load(weights_only=True) refuses to rebuild it."""


def test_pickled_sample_inputs_are_refused_before_torch_export_load(artifact_bytes, tmp_path):
    buffer = io.BytesIO()
    torch.save({"x": Payload()}, buffer)
    tampered = tmp_path / "tampered.pt2"
    with zipfile.ZipFile(io.BytesIO(artifact_bytes)) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = buffer.getvalue() if "/sample_inputs/" in item.filename else source.read(item)
            target.writestr(item, data)
    with pytest.raises(ExportError, match="sample inputs are not plain tensors"):
        load_program(tampered)


def test_a_baseline_outside_the_zoo_travels_as_its_program(tmp_path):
    from prunequant.export.pt2e_runner import BASELINE_PROGRAM, _write_baseline

    model = TwoInputs().eval()
    example = _two_input_batches(1, as_dict=False)[0][0]
    spec = _write_baseline(model, example, tmp_path)
    assert spec["kind"] == "program" and spec["description"] == BASELINE_PROGRAM
    with torch.inference_mode():
        expected = model(*example)
        assert torch.allclose(load_program(spec["path"]).module()(*example), expected, atol=1e-6)


def test_bench_and_runner_refuse_a_broken_artifact_before_compiling(tmp_path):
    from prunequant.export.bench import bench
    from prunequant.export.pt2e_runner import run_pt2e

    broken = tmp_path / "broken.pt2"
    broken.write_bytes(b"\x00" * 64)
    with pytest.raises(ExportError, match="not a readable torch.export"):
        bench([broken], batches=(1,), threads=1)
    with pytest.raises(ExportError, match="no such .pt2 file"):
        run_pt2e(tmp_path / "missing.pt2", None, torch.randn(1, *SAMPLE_SHAPE))


def test_child_processes_import_this_prunequant_first():
    import os
    from pathlib import Path

    import prunequant
    from prunequant.export.pt2e_runner import child_env

    first = child_env()["PYTHONPATH"].split(os.pathsep)[0]
    assert Path(first) == Path(prunequant.__file__).resolve().parents[1]
