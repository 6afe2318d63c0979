"""Fixtures of the structured-pruning tests: the "not silently wrong" check, applied to every model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from prunequant.export import export_onnx
from prunequant.pruning.structured import StructuredPruneResult
from prunequant.pruning.structured.groups import IN
from prunequant.pruning.structured.routing import labels
from prunequant.tasks import flatten_outputs, run_model


def _randomize_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters, so zeroed channels are not zero."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            with torch.no_grad():
                module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(n, generator=generator) - 0.5)
    return model.eval()


def masked_reference(original: nn.Module, result: StructuredPruneResult, x) -> object:
    """Output of the ORIGINAL model with every removed channel zeroed where the next layers read it.

    Built from the plan alone (which channels of which group went), independent of the layer rewrite.
    """
    zero: dict[str, set[int]] = {}
    for plan in result.groups:
        for module, positions in _read_positions(result, plan).items() if plan.removed else ():
            zero.setdefault(module, set()).update(positions)
    modules = dict(original.named_modules())
    handles = []
    for name, positions in zero.items():
        index = torch.tensor(sorted(positions))

        def hook(module: nn.Module, args: tuple, index: torch.Tensor = index) -> tuple:
            dim = args[0].dim() - 1 if isinstance(module, nn.Linear) else 1
            return (args[0].index_fill(dim, index, 0.0), *args[1:])

        handles.append(modules[name].register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            return run_model(original.eval(), x)
    finally:
        for handle in handles:
            handle.remove()


def _read_positions(result: StructuredPruneResult, plan) -> dict[str, set[int]]:
    """{consumer layer: input positions holding a removed channel of `plan`}; for a routed region, the
    positions of the removed (source, channel) labels in every tensor its convs read."""
    region = next((r for r in result.graph.regions if r.name == plan.name), None)
    removed, start = {plan.name: set(plan.removed)}, 0
    for name, width in region.widths.items() if region else ():  # numbered source after source
        removed[name] = {c - start for c in plan.removed if start <= c < start + width}
        start += width
    read: dict[str, set[int]] = {}
    for name in region.widths if region else (plan.name,):
        for member in result.graph.group(name).consumers:
            read.setdefault(member.module, set()).update(member.positions(sorted(removed[name])).tolist())
    for member in region.members if region else ():
        if member.role == IN:
            tensor = labels(member.expr, region.widths)
            gone = {p for p, (source, channel) in enumerate(tensor) if channel in removed[source]}
            read.setdefault(member.module, set()).update(gone)
    return read


def check_equivalent(original: nn.Module, result: StructuredPruneResult, x, atol: float = 1e-5):
    """The pruned model's outputs (a tensor, tuple or dict; `x` likewise) equal the masked original's, with
    the same shapes; returns both outputs."""
    with torch.no_grad():
        pruned = run_model(result.model.eval(), x)
    reference = masked_reference(original, result, x)
    pairs = list(zip(flatten_outputs(pruned), flatten_outputs(reference), strict=True))
    for got, expected in pairs:
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=atol, rtol=1e-4)
    return pruned, reference


@pytest.fixture
def equivalent():
    """check_equivalent(original, result, x): the pruned output equals the channel-masked original's."""
    return check_equivalent


@pytest.fixture
def randomize_norms():
    return _randomize_norms


def check_onnx_matches(model: nn.Module, x: torch.Tensor, path: Path, atol: float = 1e-4) -> None:
    """`model` exported to fp32 ONNX at `path` runs on onnxruntime and gives torch's output within `atol`."""
    export_onnx(model.eval(), path, x)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(got, expected, atol=atol, rtol=1e-4)


@pytest.fixture
def onnx_matches():
    """check_onnx_matches(model, x, path): the fp32 ONNX export runs on onnxruntime like the model."""
    return check_onnx_matches
