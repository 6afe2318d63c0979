"""Ray backend (optional extra `dist`): each trial is a Ray task running the same `run_trial` as the local
backend. Results (metrics and checkpoint bytes) flow back to the driver, which alone writes the DB and
the run directory, so workers need no shared disk. Trainer callbacks (live bars, the search pruner) are
not shipped: they only run with the local backend.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prunequant.errors import ConfigError
from prunequant.lab.trials import TrialOutcome, TrialTask, run_trial


def import_ray() -> Any:
    """ray, or a ConfigError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray: pip install 'prunequant[dist]'") from None
    return ray


def _remote_trial(task: TrialTask) -> TrialOutcome:
    return run_trial(task)


class RayBackend:
    """Submits every trial of a stage as a Ray task (1 CPU each) and yields them as they finish.

    `address` joins an existing cluster ("auto", "ray://host:10001"); None starts Ray in this process
    (unless it is already initialised, e.g. by a test).
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None) -> None:
        self.ray = import_ray()
        self._owns = not self.ray.is_initialized()
        if self._owns:
            try:
                self.ray.init(
                    address=address,
                    num_cpus=num_cpus if address is None else None,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(
                    f"cannot start or reach Ray at {address or 'a local instance'} ({exc})"
                ) from None
        self._task = self.ray.remote(num_cpus=1, max_retries=0)(_remote_trial)

    def execute(
        self, tasks: Sequence[TrialTask], start: Any
    ) -> Iterator[tuple[TrialTask, TrialOutcome | BaseException]]:
        pending = {}
        for task in tasks:
            start(task)  # marks it running in the DB; callbacks stay in the driver
            pending[self._task.remote(task)] = task
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            task = pending.pop(done[0])
            try:
                outcome: TrialOutcome | BaseException = self.ray.get(done[0])
            except self.ray.exceptions.RayTaskError as err:
                outcome = _cause(err)
            except self.ray.exceptions.RayError as err:
                outcome = RuntimeError(f"Ray lost the trial ({type(err).__name__}: {err})")
            yield task, outcome

    def close(self) -> None:
        if self._owns:
            self.ray.shutdown()


def _cause(err: Exception) -> BaseException:
    """The exception the trial raised inside the worker (typed errors keep their type)."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, BaseException) else err
