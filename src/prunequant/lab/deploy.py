"""Deployment stages: export the baseline and the best models to ONNX (fp32 + int8 QDQ via onnxruntime),
score and time them and compare their outputs with the PyTorch model (parity, by the task's comparison);
then one interleaved benchmark (A B A B, medians, ratios to the baseline) of them all."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prunequant.lab.env import Env, environment, model_from_bytes
from prunequant.lab.measure import deployed_fp32, evaluate_scores
from prunequant.lab.runner import Session
from prunequant.lab.select import best_choice, within_budget
from prunequant.lab.store import MODEL_STAGES, TrialRow
from prunequant.lab.trials import TrialOutcome, TrialSpec, TrialTask, register_kind
from prunequant.quantization import is_quantized
from prunequant.tasks import run_model
from prunequant.training import Callback


def deploy_candidates(session: Session) -> list[TrialRow]:
    """The baseline, the trials of the best deployable forms by size and by latency, the combined model
    and the trial of each stage's best form under the budget (deduplicated, in that order). The picks
    break speed ties within the measured spread deterministically (prunequant.lab.select.best_choice)."""
    run, rows, baseline, budget = session.recipe.run, session.store.rows(), session.baseline(), session.budget
    choices = [best_choice(rows, baseline, budget, objective) for objective in ("size", "latency")]
    for stage in MODEL_STAGES:
        stage_rows = [row for row in rows if row.stage == stage]
        choices.append(best_choice(stage_rows, baseline, budget, run.objective))
    picks = [choice.row for choice in choices if choice is not None]
    picks[2:2] = [row for row in rows if row.stage == "combine" and row.status == "done"]
    unique = {row.trial_id: row for row in picks if within_budget(row, baseline, budget)}
    return [baseline, *[row for trial, row in unique.items() if trial != baseline.trial_id]]


@register_kind("export")
def run_export_trial(task: TrialTask, callbacks: Sequence[Callback]) -> TrialOutcome:
    """ONNX fp32 and int8 QDQ of the source model: the task's metrics and latency in onnxruntime, and
    parity: the deployed file's outputs against the PyTorch model's (as deployed) on the test split.

    A quantized model keeps its own scales (method "ours"; widths other than 8 bits run as dequantized
    float); a float model is calibrated by onnxruntime (method "ort", U8 activations, S8 weights).
    """
    from prunequant.export.onnx_fp32 import export_onnx
    from prunequant.export.onnx_int8 import export_int8
    from prunequant.export.ort_quantizer import OrtQuantConfig
    from prunequant.export.runtime import OnnxRunner

    recipe, config = task.recipe, task.spec.config
    env = environment(recipe)
    model, _ = model_from_bytes(task.inputs[config["source"]], recipe.model.arch)
    threads, repeats = recipe.run.threads or None, recipe.profile.repeats
    with tempfile.TemporaryDirectory(prefix="pq-export-") as folder:
        fp32_path = export_onnx(deployed_fp32(model), Path(folder) / "model.fp32.onnx", env.sample)
        deployed = fp32 = OnnxRunner(fp32_path, threads)
        metrics: dict[str, Any] = {
            "latency_fp32_ms": fp32.latency(env.latency_batch, repeats=repeats).median_ms
        }
        extra: dict[str, Any] = {"fp32": evaluate_scores(fp32, env, recipe), "fp32_bytes": fp32.bytes}
        extra["precision"] = "fp32"
        if config["int8"]:
            calib = env.calibration(config["calib_batches"])
            method = "ours" if is_quantized(model) else "ort"
            result = export_int8(
                model,
                Path(folder) / "model.int8.onnx",
                env.sample,
                method,
                calib_loader=calib,
                ort_config=OrtQuantConfig(calib_batches=len(calib)),
                task=env.task,
            )
            deployed = OnnxRunner(result.output, threads)
            extra.update(precision=result.precision, method=method)
        deployed_ms = deployed.latency(env.latency_batch, repeats=repeats).median_ms
        if extra["precision"] == "int8":
            metrics["latency_int8_ms"] = deployed_ms
        extra["deployed_ms"] = deployed_ms
        metrics.update(evaluate_scores(deployed, env, recipe), file_bytes=deployed.bytes)
        extra["parity"] = output_parity(deployed_fp32(model), deployed, env, recipe.run.eval_batches)
        return TrialOutcome(
            metrics, extra, deployed.path.read_bytes(), ".onnx", {"model.fp32.onnx": fp32_path.read_bytes()}
        )


@register_kind("bench")
def run_bench_trial(task: TrialTask, callbacks: Sequence[Callback]) -> TrialOutcome:
    """prunequant.export.bench over config["entries"] (first = the baseline), interleaved; checkpoints run as
    deployed in fp32 eager torch (BatchNorm folded, quantizers dropped), ONNX files in onnxruntime."""
    import torch

    from prunequant.export.bench import bench, load_candidate, torch_candidate

    recipe, config = task.recipe, task.spec.config
    threads = recipe.run.threads or None
    sample = environment(recipe).sample
    example = None if isinstance(sample, torch.Tensor) else sample  # several inputs: shapes from the data
    with tempfile.TemporaryDirectory(prefix="pq-bench-") as folder:
        candidates = []
        for index, entry in enumerate(config["entries"]):
            data = task.inputs[entry["trial"]]
            if entry["suffix"] == ".pt":
                model, meta = model_from_bytes(data, recipe.model.arch)
                shape = None if example is not None else meta.get("input_shape")
                candidates.append(torch_candidate(entry["name"], deployed_fp32(model), shape))
                continue
            path = Path(folder) / f"{index}{entry['suffix']}"
            path.write_bytes(data)
            candidates.append(dataclasses.replace(load_candidate(path, threads), name=entry["name"]))
        report = bench(
            candidates,
            config["batch_sizes"],
            threads,
            rounds=config["rounds"],
            repeats=config["repeats"],
            seed=recipe.run.seed,
            example=example,
        )
    return TrialOutcome({}, {**report.to_dict(), "entries": config["entries"]})


def output_parity(reference: Any, candidate: Any, env: Env, max_batches: int = 0) -> dict[str, Any]:
    """The task's comparison of `candidate`'s outputs with `reference`'s on the test split (max/mean
    absolute and relative error per output; classification adds the agreement of predictions)."""
    import torch

    comparison = env.task.comparison()
    with torch.inference_mode():
        for index, batch in enumerate(env.loaders.test):
            if max_batches and index >= max_batches:
                break
            inputs, target = env.task.split(batch)
            comparison.update(run_model(reference, inputs), run_model(candidate, inputs), target)
    return comparison.compute()


def run_export(session: Session) -> None:
    section = session.recipe.export
    session.run(
        [
            TrialSpec(
                "export",
                f"export {row.label}",
                {
                    "kind": "export",
                    "source": row.trial_id,
                    "int8": section.int8,
                    "calib_batches": section.calib_batches,
                },
            )
            for row in deploy_candidates(session)
        ]
    )


def run_bench(session: Session) -> None:
    section = session.recipe.bench
    entries = [
        {"trial": row.trial_id, "name": f"{row.label} (torch)", "suffix": ".pt"}
        for row in deploy_candidates(session)
    ]
    entries += [
        {
            "trial": row.trial_id,
            "name": f"{row.label.removeprefix('export ')} (onnxruntime {row.extra.get('precision', 'fp32')})",
            "suffix": ".onnx",
        }
        for row in session.store.rows("export", "done")
    ]
    session.run(
        [
            TrialSpec(
                "bench",
                f"bench {len(entries)} models",
                {
                    "kind": "bench",
                    "sources": [entry["trial"] for entry in entries],
                    "entries": entries,
                    "batch_sizes": list(section.batch_sizes),
                    "repeats": section.repeats,
                    "rounds": section.rounds,
                },
            )
        ]
    )
