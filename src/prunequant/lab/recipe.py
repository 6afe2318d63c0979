"""Recipes: one TOML file declares the model, data, baseline hyper-parameters, budget and the stages to run.

```toml
[run]        seed, objective (latency|size), threads, eval_batches, device (auto|cpu|cuda|cuda:N),
             deploy_batch, timing_rounds, timing_repeats, runtimes
[task]       name (built-in task or "module:factory"), options, metric (default: the task's primary),
             max_drop (budget: absolute in the metric's unit, or relative like "3%")
[model]      arch (zoo name or "module:factory"), kwargs, checkpoint ("builtin:NAME", a path relative to
             the recipe, a prunequant checkpoint or a plain state_dict of arch; absent: the profile
             stage trains the baseline with [baseline])
[data]       dataset, data_dir, limit, val_fraction, options; or factory = "module:factory" (+ options)
             returning train/val/test datasets or loaders
[baseline]   lr, epochs, batch_size, optimizer, momentum, weight_decay, max_batches_per_epoch,
             refine_factor, refine_epochs   (the "original LR" and "LR/10" of the seeds)
[finetune]   distill, distill_weight, distill_temperature, distill_kind, distill_features,
             early_stop_patience, bn_recalibrate, bn_batches   (recovery in every fine-tune)
[profile] [post_prune] [aware_prune] [post_quant] [aware_quant] [combine] [structured] [joint]
[iterative] [slimming] [layer_prune] [sensitivity] [search] [export] [bench]   stages; each runs when
             its table is present (see prunequant.lab.sections, recovery_sections and slim_sections)
```
Everything is checked before any work starts; a mistake is one ConfigError naming file, line and key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomllib

from prunequant.builtin import PREFIX as BUILTIN_PREFIX
from prunequant.builtin import resolve_checkpoint as resolve_builtin
from prunequant.errors import CheckpointError, ConfigError
from prunequant.lab import sections as sec
from prunequant.lab.budget import Budget, parse_drop
from prunequant.lab.recovery_sections import FinetuneSection, IterativeSection, JointSection
from prunequant.lab.slim_sections import LayerPruneSection, SlimmingSection
from prunequant.lab.tomlfields import Source, build_section, suggest
from prunequant.tasks import Task, build_task
from prunequant.training import TrainConfig
from prunequant.training.device import check_device_name
from prunequant.validation import check_choice, check_fraction, check_int_range, check_positive

MOVED_TO_TASK = ("metric", "max_drop")
"""[run] keys of older recipes that now live in [task]."""


@dataclass(frozen=True)
class RunSection:
    """Seed, what 'best' minimises, threads, evaluation cap, training device and how deployable forms
    are timed.

    `objective` "latency" ships the fastest deployable form within the budget (speedup at `deploy_batch`),
    "size" the smallest file. `threads` fixes torch's thread count in every trial (0: leave it; timing
    then runs at 1 thread), `eval_batches` caps evaluation batches (0: all), `device` is where trials
    train ("auto": CUDA if available, else "cpu"; "cuda:N"). Forms are timed against the original at
    batch 1 and `deploy_batch`, over `timing_rounds` interleaved rounds of `timing_repeats` calls each.
    `runtimes` are the deployment runtimes tried (prunequant.lab.runtimes.RUNTIMES); "pt2e-int8", the
    torch-native int8 path (PT2E + torch.compile), is opt-in since each form compiles in its own process.
    """

    seed: int = 0
    objective: str = "latency"
    threads: int = 0
    eval_batches: int = 0
    device: str = "auto"
    deploy_batch: int = 64
    timing_rounds: int = 5
    timing_repeats: int = 5
    runtimes: tuple[str, ...] = ("onnxruntime-fp32", "onnxruntime-int8")

    def __post_init__(self) -> None:
        from prunequant.lab.runtimes import check_runtimes  # runtimes -> env -> this module

        check_int_range("seed", self.seed, 0, 2**31 - 1)
        check_choice("objective", self.objective, sec.OBJECTIVES)
        check_int_range("threads", self.threads, 0, 1024)
        check_int_range("eval_batches", self.eval_batches, 0, 10**9)
        check_device_name(self.device)
        check_int_range("deploy_batch", self.deploy_batch, 1, 1 << 16)
        check_int_range("timing_rounds", self.timing_rounds, 1, 10_000)
        check_int_range("timing_repeats", self.timing_repeats, 1, 10_000)
        check_runtimes(self.runtimes)


@dataclass(frozen=True)
class TaskSection:
    """The task (built-in name or "module:factory" called with `options`) and the budget on one metric.

    `metric` defaults to the task's primary metric; `max_drop` is absolute in the metric's unit (0.01 =
    one point of top-1) or relative, as a string: "3%" = at most 3 % worse than the original.
    """

    name: str = "classification"
    options: dict[str, Any] = field(default_factory=dict)
    metric: str = ""
    max_drop: float | str = 0.01

    def __post_init__(self) -> None:
        parse_drop(self.max_drop)
        task = self.build()
        try:
            task.metric(self.metric or None)
        except ConfigError as err:
            raise ConfigError(f"metric: {err}") from None

    def build(self) -> Task:
        """The Task object (built afresh: user tasks need not be picklable)."""
        try:
            return build_task(self.name, **self.options)
        except ConfigError as err:
            raise ConfigError(f"name: {err}") from None

    def budget(self, task: Task) -> Budget:
        """The Budget on this section's metric of `task`."""
        amount, relative = parse_drop(self.max_drop)
        return Budget(task.metric(self.metric or None), amount, relative)


@dataclass(frozen=True)
class ModelSection:
    """The pre-trained model: `arch` (zoo name or "module:factory", built with `kwargs`) and a
    `checkpoint` of it (a prunequant checkpoint or a plain state_dict), or just an arch to train."""

    arch: str = ""
    checkpoint: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.arch and not self.checkpoint:
            raise ConfigError('arch or checkpoint is required, e.g. arch = "small_cnn"')
        if self.arch:
            from prunequant.models import available_models

            if ":" not in self.arch and self.arch not in available_models():
                raise ConfigError(
                    f"arch {self.arch!r} is not in the zoo{suggest(self.arch, available_models())}; "
                    "or give 'package.module:factory'"
                )


@dataclass(frozen=True)
class DataSection:
    """A registered `dataset` (prunequant.data.load_dataset, with `options`) or a user `factory`
    ("module:factory" called with `options`) returning train/val/test datasets or loaders."""

    dataset: str = ""
    factory: str = ""
    data_dir: str = ""
    limit: int = 0
    val_fraction: float = 0.1
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if bool(self.dataset) == bool(self.factory):
            raise ConfigError(
                'dataset or factory is required (one of them), e.g. dataset = "cifar10" or '
                'factory = "mypkg.data:splits"'
            )
        if self.factory and ":" not in self.factory:
            raise ConfigError(f"factory must be 'package.module:function', got {self.factory!r}")
        if self.dataset:
            from prunequant.data import available_datasets

            name = self.dataset.strip().lower().replace("_", "-")
            if name not in available_datasets():
                raise ConfigError(
                    f"dataset {self.dataset!r} is unknown{suggest(self.dataset, available_datasets())}"
                )
        check_int_range("limit", self.limit, 0, 2**62)
        check_fraction("val_fraction", self.val_fraction)


@dataclass(frozen=True)
class BaselineSection:
    """The original training hyper-parameters: aware stages fine-tune at `lr`, refine at lr*refine_factor."""

    lr: float = 0.01
    epochs: int = 1
    batch_size: int = 128
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    max_batches_per_epoch: int = 0
    refine_factor: float = 0.1
    refine_epochs: int | None = None

    def __post_init__(self) -> None:
        self.train_config()  # every TrainConfig check, with the same key names
        check_positive("refine_factor", self.refine_factor)
        sec.check_optional_epochs("refine_epochs", self.refine_epochs)

    def train_config(self, **changes: Any) -> TrainConfig:
        """The TrainConfig of a phase with these hyper-parameters (constant LR unless changed)."""
        base = TrainConfig(
            epochs=self.epochs,
            lr=self.lr,
            optimizer=self.optimizer,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            lr_schedule="constant",
            batch_size=self.batch_size,
            max_batches_per_epoch=self.max_batches_per_epoch,
            refine_factor=self.refine_factor,
        )
        return replace(base, **changes)


STAGE_SECTIONS: dict[str, type] = {
    "profile": sec.ProfileSection,
    "post_prune": sec.PruneSweep,
    "aware_prune": sec.AwarePruneSweep,
    "post_quant": sec.QuantSweep,
    "aware_quant": sec.AwareQuantSweep,
    "combine": sec.CombineSection,
    "structured": sec.StructuredSection,
    "joint": JointSection,
    "iterative": IterativeSection,
    "slimming": SlimmingSection,
    "layer_prune": LayerPruneSection,
    "sensitivity": sec.SensitivitySection,
    "search": sec.SearchSection,
    "export": sec.ExportSection,
    "bench": sec.BenchSection,
}
"""Stage name -> its section class, in execution order."""


@dataclass(frozen=True)
class Recipe:
    """A validated recipe. Stage attributes are None when the stage is not in the recipe."""

    model: ModelSection
    data: DataSection
    baseline: BaselineSection
    run: RunSection = field(default_factory=RunSection)
    task: TaskSection = field(default_factory=TaskSection)
    finetune: FinetuneSection = field(default_factory=FinetuneSection)
    profile: sec.ProfileSection = field(default_factory=sec.ProfileSection)
    post_prune: sec.PruneSweep | None = None
    aware_prune: sec.AwarePruneSweep | None = None
    post_quant: sec.QuantSweep | None = None
    aware_quant: sec.AwareQuantSweep | None = None
    combine: sec.CombineSection | None = None
    structured: sec.StructuredSection | None = None
    joint: JointSection | None = None
    iterative: IterativeSection | None = None
    slimming: SlimmingSection | None = None
    layer_prune: LayerPruneSection | None = None
    sensitivity: sec.SensitivitySection | None = None
    search: sec.SearchSection | None = None
    export: sec.ExportSection | None = None
    bench: sec.BenchSection | None = None
    name: str = "recipe"
    checkpoint_path: str = ""

    def stages(self) -> list[str]:
        """Names of the stages this recipe runs, in order (profile always runs)."""
        return [name for name in STAGE_SECTIONS if getattr(self, name) is not None]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready) of every section."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    def context_hash(self) -> str:
        """Hash of what every trial depends on (model, data, task, baseline, seed, threads, eval)."""
        keep = {key: self.to_dict()[key] for key in ("model", "data", "baseline")}
        if not keep["data"]["factory"]:  # recipes of registered datasets hash as before [data] factory
            del keep["data"]["factory"]
        task = {"name": self.task.name, "options": self.task.options}
        if task != {"name": "classification", "options": {}}:  # the default task hashes as before [task]
            keep["task"] = task
        keep["run"] = {k: v for k, v in asdict(self.run).items() if k in ("seed", "threads", "eval_batches")}
        keep["checkpoint_sha"] = _file_sha(self.checkpoint_path)
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a TOML recipe; relative checkpoint/data paths are taken from the recipe's folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} does not exist; give the path of a .toml recipe")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read recipe {path} ({exc})") from None
    return parse_recipe(text, name=str(path), base_dir=path.parent)


def parse_recipe(text: str, *, name: str = "recipe.toml", base_dir: str | Path = ".") -> Recipe:
    """Validate recipe `text` (TOML) into a Recipe, or raise one ConfigError naming file, line and key."""
    source = Source(name, text)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML ({exc})") from None
    known = ("run", "task", "model", "data", "baseline", "finetune", *STAGE_SECTIONS)
    for key in document:
        if key not in known:
            raise ConfigError(f"{source.where(key)}: unknown section [{key}]{suggest(key, known)}")
    for required in ("model", "data", "baseline"):
        if required not in document:
            raise ConfigError(f"{name}: missing section [{required}]")
    for key in MOVED_TO_TASK:
        if isinstance(document.get("run"), dict) and key in document["run"]:
            raise source.error("run", key, f"{key} moved to the [task] section; write it under [task]")
    built = {
        "run": build_section(RunSection, document.get("run", {}), "run", source),
        "task": build_section(TaskSection, document.get("task", {}), "task", source),
        "model": build_section(ModelSection, document["model"], "model", source),
        "data": build_section(DataSection, document["data"], "data", source),
        "baseline": build_section(BaselineSection, document["baseline"], "baseline", source),
        "finetune": build_section(FinetuneSection, document.get("finetune", {}), "finetune", source),
    }
    for stage, cls in STAGE_SECTIONS.items():
        if stage in document:
            built[stage] = build_section(cls, document[stage], stage, source)
    _check_stages(built, source)
    base_dir = Path(base_dir)
    if built["data"].data_dir:
        built["data"] = replace(built["data"], data_dir=str(_resolve(base_dir, built["data"].data_dir)))
    checkpoint = resolve_checkpoint(built["model"].checkpoint, base_dir, source)
    return Recipe(**built, name=Path(name).stem, checkpoint_path=str(checkpoint or ""))


def _check_stages(built: dict[str, Any], source: Source) -> None:
    """Checks across sections: what a stage needs from the others."""
    if "combine" in built and not any(
        f"{m}_{k}" in built for m in ("post", "aware") for k in ("prune", "quant")
    ):
        raise source.error(
            "combine",
            None,
            "needs a pruning or quantization sweep to choose levels from; add "
            "[post_prune], [aware_prune], [post_quant] or [aware_quant]",
        )
    search = built.get("search")
    if search is not None and "sensitivity" in search.allocations and "sensitivity" not in built:
        raise source.error("search", "allocations", "allocation 'sensitivity' needs the [sensitivity] stage")
    structured = built.get("structured")
    if structured is not None:
        epochs = built["baseline"].epochs if structured.epochs is None else structured.epochs
        gradual = [s for s in structured.schedules if s in ("stepwise", "layerwise")]
        if gradual and epochs == 0:
            raise source.error(
                "structured",
                "epochs",
                f"schedule '{gradual[0]}' prunes while fine-tuning, so epochs must be at least 1",
            )


def resolve_checkpoint(text: str, base_dir: Path, source: Source) -> Path | None:
    """'builtin:NAME' -> the packaged asset; a relative path -> under `base_dir`; must exist."""
    if not text:
        return None
    try:
        path = resolve_builtin(text)
    except CheckpointError as err:
        raise source.error(
            "model",
            "checkpoint",
            f"{err}; give a checkpoint path, or drop the key to train the baseline in the run",
        ) from None
    if not text.startswith(BUILTIN_PREFIX):
        path = _resolve(base_dir, text)
    if not path.is_file():
        raise source.error("model", "checkpoint", f"checkpoint {path} does not exist; fix the path")
    return path


def _resolve(base_dir: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.loads(json.dumps(asdict(value)))


def _file_sha(path: str) -> str:
    if not path:
        return ""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
