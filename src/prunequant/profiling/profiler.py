"""profile(model, example_input): per-layer costs from one hooked forward, grouped by top-level module.

Latency: TOTAL is the median (with p10-p90) of plain forwards timed by prunequant.timing. Per-layer times
come from separate hooked forwards, and each layer gets its median SHARE of its own forward times the
TOTAL, so layers and groups add up to TOTAL with the rest in `other_latency_ms`: what runs outside modules
(functional ops such as `x + shortcut` or F.relu, Python between layers, hook overhead). Raw hooked
medians do not add up: a sum of per-layer medians drops the stalls a whole forward pays, and layers
timed at another moment than TOTAL see another load.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict

import torch
from torch import nn

from prunequant.models.layers import layer_role
from prunequant.profiling.layer_costs import layer_cost
from prunequant.profiling.report import ProfileReport
from prunequant.tasks.io import Inputs, as_args, batch_size_of, run_model, take
from prunequant.timing import Timing, measure, plan_threads, torch_threads


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


def _layer_shares(model: nn.Module, example_input: Inputs, passes: int) -> dict[str, float]:
    """Each leaf's median share of its hooked forward pass (time in the leaf / time of the whole pass)."""
    spent: dict[str, float] = defaultdict(float)
    starts: dict[str, float] = {}
    shares: dict[str, list[float]] = defaultdict(list)

    def pre(name: str):
        def start(module: nn.Module, inputs: tuple) -> None:
            starts[name] = time.perf_counter()

        return start

    def post(name: str):
        def stop(module: nn.Module, inputs: tuple, output: object) -> None:
            spent[name] += time.perf_counter() - starts[name]

        return stop

    handles = []
    for name, module in _leaves(model):
        handles.append(module.register_forward_pre_hook(pre(name)))
        handles.append(module.register_forward_hook(post(name)))
    try:
        with torch.inference_mode():
            run_model(model, example_input)  # warm-up
            for _ in range(passes):
                spent.clear()
                start = time.perf_counter()
                run_model(model, example_input)
                whole = time.perf_counter() - start
                for name, seconds in spent.items():
                    shares[name].append(seconds / whole if whole > 0 else 0.0)
    finally:
        for handle in handles:
            handle.remove()
    medians = {name: statistics.median(values) for name, values in shares.items()}
    scale = max(1.0, sum(medians.values()))  # medians of shares may exceed 1 together; never the total
    return {name: share / scale for name, share in medians.items()}


def _attribute_latency(
    model: nn.Module, example_input: Inputs, layers: list[dict], total: Timing, passes: int
) -> float:
    """Set each layer's `latency_ms` to its share of `total`; return what no module accounts for."""
    shares = _layer_shares(model, example_input, passes)
    for row in layers:
        share = shares.get(row["name"])
        row["latency_ms"] = None if share is None else share * total.median_ms
    return total.median_ms * (1.0 - sum(shares.values()))


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
    Latency (TOTAL median, p10, p90, noisy flag and threads in `total`) is timed by prunequant.timing;
    per-layer latencies are shares of it (see the module docstring), with `other_latency_ms` the rest.
    The model is put in eval mode and not otherwise changed.
    """
    was_training = model.training
    model.eval()
    try:
        layers = _count_layers(model, example_input)
        params = sum(p.numel() for p in model.parameters())
        nonzero = sum(int(torch.count_nonzero(p.detach())) for p in model.parameters())
        timing, plan, other_ms = None, None, None
        if latency:
            plan = plan_threads(torch.get_num_threads())
            with torch_threads(plan.used):  # TOTAL and the shares at the same threads
                timing = measure(
                    lambda: run_model(model, example_input), rounds=repeats, warmup=warmup, threads=plan
                )
                other_ms = _attribute_latency(model, example_input, layers, timing, max(3, repeats // 2))
    finally:
        model.train(was_training)
    return ProfileReport.build(
        layers,
        params=params,
        nonzero_params=nonzero,
        latency=timing,
        threads=plan,
        other_latency_ms=other_ms,
        batch_size=batch_size_of(example_input),
        input_shape=_input_shape(example_input),
    )


def _input_shape(example_input: Inputs) -> list:
    """Per-sample shape of the input: a list of ints for one tensor, else one list per input."""
    if isinstance(example_input, torch.Tensor):
        return list(example_input.shape[1:])
    return [list(t.shape[1:]) for t in as_args(example_input)]
