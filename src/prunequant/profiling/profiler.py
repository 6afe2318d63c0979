"""profile(model, example_input): per-layer costs from one hooked forward, grouped by top-level module."""

from __future__ import annotations

import time
from collections import defaultdict

import torch
from torch import nn

from prunequant.models.layers import layer_role
from prunequant.profiling.latency import measure_latency, summarize
from prunequant.profiling.layer_costs import layer_cost
from prunequant.profiling.report import ProfileReport
from prunequant.tasks.io import Inputs, as_args, batch_size_of, run_model, take


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules costed one by one: every conv/linear/norm by role (a user subclass with a padding child
    counts as one conv), and every other leaf module outside those."""
    chosen: list[tuple[str, nn.Module]] = []
    inside: list[str] = []
    for name, module in model.named_modules():
        if not name or any(name.startswith(prefix + ".") for prefix in inside):
            continue
        if layer_role(module) is not None:
            chosen.append((name, module))
            inside.append(name)
        elif not list(module.children()):
            chosen.append((name, module))
    return chosen


def _own_params(module: nn.Module) -> tuple[int, int]:
    params = list(module.parameters(recurse=False))
    total = sum(p.numel() for p in params)
    nonzero = sum(int(torch.count_nonzero(p.detach())) for p in params)
    return total, nonzero


def _group_of(name: str) -> str:
    return name.split(".", 1)[0]


def _count_layers(model: nn.Module, example_input: Inputs) -> list[dict]:
    rows: list[dict] = []

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple, output: object) -> None:
            if not isinstance(output, torch.Tensor):
                return
            cost = layer_cost(module, inputs, output)
            params, nonzero = _own_params(module)
            batch = output.shape[0] if output.dim() > 1 else 1
            act = output.numel() // batch
            rows.append(
                {
                    "name": name,
                    "type": type(module).__name__,
                    "group": _group_of(name),
                    "output_shape": list(output.shape[1:]),
                    "params": params,
                    "nonzero_params": nonzero,
                    "formula_params": cost.formula_params,
                    "macs": cost.macs,
                    "effective_macs": round(cost.macs * cost.weight_density),
                    "flops": cost.flops,
                    "activation_elements": act,
                    "activation_bytes": act * output.element_size(),
                }
            )

        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in _leaves(model)]
    try:
        with torch.inference_mode():
            run_model(model, take(example_input, 1))
    finally:
        for handle in handles:
            handle.remove()
    return rows


def _layer_latency(model: nn.Module, example_input: Inputs, repeats: int) -> dict[str, float]:
    """Median per-module time in ms, from pre/post forward hooks on every leaf."""
    samples: dict[str, list[float]] = defaultdict(list)
    starts: dict[str, float] = {}

    def pre(name: str):
        def start(module: nn.Module, inputs: tuple) -> None:
            starts[name] = time.perf_counter()

        return start

    def post(name: str):
        def stop(module: nn.Module, inputs: tuple, output: object) -> None:
            samples[name].append((time.perf_counter() - starts[name]) * 1e3)

        return stop

    handles = []
    for name, module in _leaves(model):
        handles.append(module.register_forward_pre_hook(pre(name)))
        handles.append(module.register_forward_hook(post(name)))
    try:
        with torch.inference_mode():
            for _ in range(repeats):
                run_model(model, example_input)
    finally:
        for handle in handles:
            handle.remove()
    return {name: summarize(values).median_ms for name, values in samples.items()}


def profile(
    model: nn.Module,
    example_input: Inputs,
    *,
    latency: bool = True,
    warmup: int = 3,
    repeats: int = 20,
) -> ProfileReport:
    """Profile `model` on `example_input` (counts are per sample; latency is for the batch as given).

    `example_input` is a tensor, a tuple (positional inputs) or a dict (keyword inputs) of tensors; the
    model may return a tensor or any tuple/list/dict of them. Conv, linear and norm layers are found by
    role, so subclasses (e.g. "same"-padding convs with a padding child) are costed as their base class.

    Params are exact tensor counts, with seed 000 eq. (1)/(2) alongside; FLOPs follow eq. (3)/(4) and
    MACs are multiply-accumulates. Zeroed weights show up in `nonzero_params` and `effective_macs`.
    The model is put in eval mode and not otherwise changed.
    """
    was_training = model.training
    model.eval()
    try:
        layers = _count_layers(model, example_input)
        params = sum(p.numel() for p in model.parameters())
        nonzero = sum(int(torch.count_nonzero(p.detach())) for p in model.parameters())
        latency_ms = None
        if latency:
            with torch.inference_mode():
                stats = measure_latency(
                    lambda: run_model(model, example_input), warmup=warmup, repeats=repeats
                )
            latency_ms = stats.median_ms
            per_layer = _layer_latency(model, example_input, max(3, repeats // 2))
            for row in layers:
                row["latency_ms"] = per_layer.get(row["name"])
    finally:
        model.train(was_training)
    return ProfileReport.build(
        layers,
        params=params,
        nonzero_params=nonzero,
        latency_ms=latency_ms,
        batch_size=batch_size_of(example_input),
        input_shape=_input_shape(example_input),
    )


def _input_shape(example_input: Inputs) -> list:
    """Per-sample shape of the input: a list of ints for one tensor, else one list per input."""
    if isinstance(example_input, torch.Tensor):
        return list(example_input.shape[1:])
    return [list(t.shape[1:]) for t in as_args(example_input)]
