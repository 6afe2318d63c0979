"""io helpers: calling a model with any input structure, flattening and naming outputs, devices, describe."""

from __future__ import annotations

import torch

from prunequant.tasks import (
    as_args,
    batch_size_of,
    describe,
    flatten_outputs,
    input_names,
    output_names,
    run_model,
    to_device,
)


def model(*args, **kwargs):
    return args, kwargs


def test_run_model_spreads_tuples_and_dicts():
    a, b = torch.zeros(1), torch.ones(1)
    assert run_model(model, a) == ((a,), {})
    assert run_model(model, (a, b)) == ((a, b), {})
    assert run_model(model, {"image": a, "depth": b}) == ((), {"image": a, "depth": b})


def test_as_args_and_input_names():
    a, b = torch.zeros(2, 3), torch.ones(2, 1)
    assert as_args(a) == (a,) and as_args([a, b]) == (a, b) and as_args({"x": a, "y": b}) == (a, b)
    assert input_names(a) == ["input"] and input_names((a, b)) == ["input0", "input1"]
    assert input_names({"image": a, "depth": b}) == ["image", "depth"]
    assert batch_size_of({"image": a}) == 2 and batch_size_of(torch.tensor(1.0)) == 1


def test_flatten_and_name_nested_outputs():
    a, b, c = torch.zeros(1), torch.ones(2), torch.full((3,), 2.0)
    outputs = {"flow": [a, b], "conf": c}
    flat = flatten_outputs(outputs)
    assert [t.shape[0] for t in flat] == [1, 2, 3]
    assert output_names(outputs) == ["output.flow0", "output.flow1", "output.conf"]
    assert output_names((a, (b, c))) == ["output0", "output10", "output11"]
    assert flatten_outputs(None) == [] and flatten_outputs(2.0)[0].item() == 2.0
    assert output_names(a) == ["output"]


def test_to_device_keeps_structure():
    value = {"x": (torch.zeros(1), [torch.ones(1)]), "meta": "keep"}
    moved = to_device(value, "cpu")
    assert isinstance(moved["x"], tuple) and isinstance(moved["x"][1], list) and moved["meta"] == "keep"


def test_describe_for_error_messages():
    value = (torch.zeros(8, 3, 32, 32), {"valid": torch.zeros(8, 32, 32)}, None)
    assert describe(value) == "tuple(Tensor[8, 3, 32, 32], dict(valid=Tensor[8, 32, 32]), NoneType)"
    assert describe([torch.zeros(2)]) == "list(Tensor[2])"
