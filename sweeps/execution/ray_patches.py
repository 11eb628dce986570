"""Every touch of Ray Tune's internals, fenced in this one file and checked against the version.

Two patches of ``TuneController`` keep trials alive where Ray 2.60 would lose them (see each
function). They are written against the Ray versions in :data:`TESTED_RAY`; :func:`check_ray`
refuses any other Ray with one line (the CLI exits 2) instead of patching a controller whose
code it has not seen, and :func:`install` applies them only after that check, never at import.
"""

from __future__ import annotations

import copy
import importlib.metadata
from typing import TYPE_CHECKING, Any

from sweeps.errors import UsageError

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment import Trial

#: (major, minor) releases of Ray these patches were read against and the fault tests ran on;
#: ``pyproject.toml`` declares the same range.
TESTED_RAY = ((2, 60),)


def installed_ray() -> str:
    """The installed Ray's version, read from its metadata (Ray itself is not imported)."""
    return importlib.metadata.version("ray")


def check_ray() -> None:
    """Raises UsageError (one line) unless the installed Ray is one these patches were tested on.

    Cheap (no import of Ray), so the driver calls it before it writes anything.
    """
    version = installed_ray()
    major, minor = (int(part) for part in version.split(".")[:2])
    if (major, minor) not in TESTED_RAY:
        tested = ", ".join(f"{a}.{b}.x" for a, b in TESTED_RAY)
        raise UsageError(f"ray {version} is installed; mixup-sweeps is tested on ray {tested} "
                         f"only (pip install 'ray[tune]=={TESTED_RAY[-1][0]}."
                         f"{TESTED_RAY[-1][1]}.*')")


_installed: dict[str, Any] = {}


def install() -> None:
    """Checks the Ray version, then applies both patches (once per process)."""
    check_ray()
    if _installed:
        return
    from ray.tune.execution.tune_controller import TuneController

    _installed["update_trial_queue"] = TuneController._maybe_update_trial_queue
    TuneController._schedule_trial_reset = _schedule_trial_reset  # type: ignore[method-assign]
    TuneController._maybe_update_trial_queue = (  # type: ignore[method-assign]
        _update_trial_queue_then_checkpoint)


def _schedule_trial_reset(self: TuneController, trial: Trial, new_config: dict[str, Any],
                          new_experiment_tag: str) -> None:
    """Ray 2.60's ``TuneController._schedule_trial_reset`` with its failure handler replaced.

    When the actor being handed ``trial`` dies (its node is lost), Ray calls two handlers for
    the one event: the actor's (``_actor_failed``), which sees the trial PENDING and retries it
    within the failure budget, then the reset task's, which in Ray itself is
    ``_trial_task_failure``: it finds the same trial PENDING again and sends it to ERROR, so
    the trial was lost. Here the reset task's handler does nothing when the actor's handler
    has already taken the trial, and in every case takes the trial out of the resetting set
    (left in it, the trial would never be given an actor again).
    """
    from ray.exceptions import RayActorError
    from ray.tune.experiment.trial import _TrialInfo
    from ray.tune.result import STDERR_FILE, STDOUT_FILE, TRIAL_INFO

    trial.set_experiment_tag(new_experiment_tag)
    trial.set_config(new_config)
    extra_config = copy.deepcopy(new_config)
    extra_config[TRIAL_INFO] = _TrialInfo(trial)
    stdout_file, stderr_file = trial.log_to_file  # type: ignore[misc, str-unpack]
    extra_config[STDOUT_FILE], extra_config[STDERR_FILE] = stdout_file, stderr_file
    self._resetting_trials.add(trial)

    def reset_failed(failed: Trial, exception: Exception) -> None:
        self._resetting_trials.discard(failed)
        if isinstance(exception, RayActorError) and failed not in self._trial_to_actor:
            return  # the actor's failure handler has already retried (or ended) the trial
        self._trial_task_failure(failed, exception)

    self._schedule_trial_task(trial=trial, method_name="reset", args=(extra_config,),
                              kwargs={"storage": trial.storage},
                              on_result=self._on_trial_reset, on_error=reset_failed)


def _update_trial_queue_then_checkpoint(self: TuneController) -> None:
    """Ray's ``_maybe_update_trial_queue``, then an experiment checkpoint if it added trials.

    Tune writes its experiment state now and then; a trial the searcher proposed after the last
    write was unknown to ``resume`` once the driver was killed, so it was proposed again under a
    new id while our records (and Optuna's journal) held the first one, started and never
    ended. Writing the state when trials are added, before any of them can start, closes that
    window; a sweep adds at most one Tune trial per pack (or trial), so this costs little.
    """
    count = len(self._trials)
    _installed["update_trial_queue"](self)
    if len(self._trials) > count:
        self.checkpoint(force=True, wait=True)
