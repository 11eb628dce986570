"""Ray Tune adapter: the only module that imports ray.

It turns a :class:`~sweeps.spec.SweepSpec` into a Tuner (search space, searcher, scheduler,
resources, checkpoints, retries), runs or restores it, and forwards every trial event to a
plain-Python :class:`EventSink` in the driver (records, MLflow, progress), which keeps Ray's
types out of the rest of the package.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Protocol

import ray
import torch
from ray import tune
from ray.exceptions import RayActorError
from ray.tune.execution.tune_controller import TuneController
from ray.tune.experiment import Trial
from ray.tune.experiment.trial import _TrialInfo
from ray.tune.result import STDERR_FILE, STDOUT_FILE, TRIAL_INFO
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, Searcher

from mixup_core.config import from_flat, to_flat
from mixup_core.packed import Pack
from sweeps.layout import TRIAL_STATES
from sweeps.packing import PACK_KEY, member_trial_id, plan_packs
from sweeps.scheduling import Rungs, may_cut
from sweeps.seed_group import SeedGroup, aggregate
from sweeps.spec import Dimension, SweepSpec

TUNE_DIR = "tune"
#: ``1``: Ray's and MLflow's start-up messages are shown (``mixup-sweep run --verbose``).
VERBOSE_ENV = "MIXUP_VERBOSE"


class EventSink(Protocol):
    """What the driver does with trial events (records, MLflow, progress)."""

    def trial_started(self, trial_id: str, params: dict[str, Any]) -> None: ...
    def trial_result(self, trial_id: str, result: dict[str, Any]) -> None: ...
    def trial_finished(self, trial_id: str, status: str, error: str | None) -> None: ...
    def trial_settled(self, trial_id: str, status: str, error: str | None) -> None: ...
    def pack_started(self, pack_id: str, members: list[tuple[str, dict[str, Any]]]) -> None: ...
    def pack_settled(self, pack_id: str, status: str, error: str | None) -> None: ...
    def progress(self, counts: dict[str, int]) -> None: ...


class SinkFactory(Protocol):
    """Picklable recipe for an EventSink: Tune pickles its callbacks with the experiment."""

    def open(self) -> EventSink: ...


# ---------------------------------------------------------------------------- search space


def _dimension(dim: Dimension) -> Any:
    low, high = float(dim.low or 0.0), float(dim.high or 0.0)  # set for every range kind
    if dim.kind == "choice":
        return tune.choice(list(dim.values))
    if dim.kind == "grid":
        return tune.grid_search(list(dim.values))
    if dim.kind == "uniform":
        return tune.uniform(low, high)
    if dim.kind == "loguniform":
        return tune.loguniform(low, high)
    if dim.kind == "randint":
        return tune.randint(int(low), int(high))
    if dim.kind == "quniform":
        return tune.quniform(low, high, float(dim.q or 1.0))
    raise ValueError(f"unknown dimension kind {dim.kind!r}")  # the spec loader refuses these


#: The one Tune grid dimension: whole grid points, with the points that train alike merged away
#: (``SweepSpec.grid_trials``); a trial's own keys are :func:`trial_params` of its config.
GRID_KEY = "grid_point"


def param_space(spec: SweepSpec) -> dict[str, Any]:
    space = {key: _dimension(dim) for key, dim in spec.search_space.items() if dim.kind != "grid"}
    if any(dim.kind == "grid" for dim in spec.search_space.values()):
        space[GRID_KEY] = tune.grid_search([trial.point for trial in spec.grid_trials()])
    return space


def pack_space(spec: SweepSpec, size: int) -> dict[str, Any]:
    """One Tune grid dimension whose values are whole packs of grid points."""
    return {PACK_KEY: tune.grid_search(plan_packs(spec, size))}


def trial_params(config: dict[str, Any]) -> dict[str, Any]:
    """A Tune trial config as dotted trial keys (its grid point unpacked)."""
    params = {key: value for key, value in config.items() if key != GRID_KEY}
    params.update(config.get(GRID_KEY) or {})
    return params


def _searcher(spec: SweepSpec) -> Searcher | BasicVariantGenerator:
    s = spec.search
    if s.algorithm == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        from sweeps.optuna_adapter import tpe_sampler

        objectives = spec.all_objectives
        if len(objectives) > 1:  # Optuna's multi-objective TPE over every objective
            optuna = OptunaSearch(metric=[o.metric for o in objectives],
                                  mode=[o.mode for o in objectives], sampler=tpe_sampler(s.seed))
        else:
            optuna = OptunaSearch(metric=spec.objective.metric, mode=spec.objective.mode,
                                  sampler=tpe_sampler(s.seed))
        return ConcurrencyLimiter(optuna, max_concurrent=s.max_concurrent)
    return BasicVariantGenerator(max_concurrent=s.max_concurrent, random_state=s.seed)


#: The Optuna study of a packed Optuna sweep, in the sweep folder.
OPTUNA_JOURNAL = "optuna.journal"


class PackSearcher(Searcher):
    """Optuna for packs: each Tune trial asks the study for a whole pack of configs, and each
    member trial's result is told when it ends (the objective at its last report, as Ray Tune's
    ``OptunaSearch`` tells an unpacked trial's; a diverged member fails its Optuna trial).

    The study lives in ``optuna.journal`` in the sweep folder (sweeps.optuna_adapter.PackStudy);
    Tune checkpoints which Optuna trials each pack holds, so ``resume`` goes on with the same
    study and the same pending trials.
    """

    def __init__(self, spec: SweepSpec, size: int, sweep_dir: Path) -> None:
        super().__init__()
        self._space = {key: (dim.kind, list(dim.values), dim.low, dim.high, dim.q)
                       for key, dim in spec.search_space.items()}
        self._size, self._total = size, spec.search.num_samples
        self._journal = str(sweep_dir.resolve() / OPTUNA_JOURNAL)
        self._name, self._seed = sweep_dir.resolve().name, spec.search.seed
        self._objectives = [o.metric for o in spec.all_objectives]
        self._directions = [o.mode for o in spec.all_objectives]
        self._study: Any = None
        self._packs: dict[str, list[int]] = {}  # Tune trial id -> Optuna trial numbers
        #: member trial id -> each objective at its last report
        self._last: dict[str, dict[str, float]] = {}
        self._told: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_study": None}  # the study is reopened from its journal

    @property
    def study(self) -> Any:
        if self._study is None:
            from sweeps.optuna_adapter import PackStudy

            self._study = PackStudy(self._journal, name=self._name, space=self._space,
                                    modes=self._directions, seed=self._seed)
        return self._study

    def set_search_properties(self, metric: str | None, mode: str | None,
                              config: dict[str, Any], **spec: Any) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if trial_id in self._packs:
            raise RuntimeError(f"{trial_id} was suggested twice")
        asked = sum(len(numbers) for numbers in self._packs.values())
        if asked >= self._total:
            return Searcher.FINISHED  # type: ignore[return-value]  # Ray's sentinel string
        trials = self.study.ask(min(self._size, self._total - asked))
        self._packs[trial_id] = [number for number, _ in trials]
        return {PACK_KEY: [params for _, params in trials]}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        # Tune hands searchers the result flattened: "trials/<member>/<metric>", "finished/<member>"
        finished = []
        for key, value in result.items():
            head, _, rest = key.partition("/")
            if head == "trials":
                member_id, _, metric = rest.partition("/")
                if metric in self._objectives:
                    self._last.setdefault(member_id, {})[metric] = float(value)
            elif head == "finished" and rest:
                finished.append((rest, value[0]))
        for member_id, status in finished:
            self._tell(trial_id, member_id, status)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        if result:
            self.on_trial_result(trial_id, result)
        for j in range(len(self._packs.get(trial_id, []))):
            self._tell(trial_id, member_trial_id(trial_id, j), "ERROR" if error else "TERMINATED")

    def _tell(self, trial_id: str, member_id: str, status: str) -> None:
        if member_id in self._told or trial_id not in self._packs:
            return
        number = self._packs[trial_id][int(member_id.rsplit("-", 1)[1])]
        last = self._last.get(member_id, {})
        values = None if status == "ERROR" or any(m not in last for m in self._objectives) \
            else [last[m] for m in self._objectives]
        self.study.tell(number, values)
        self._told.add(member_id)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "w") as f:
            json.dump({"packs": self._packs, "last": self._last, "told": sorted(self._told)}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            state = json.load(f)
        self._packs, self._last = state["packs"], state["last"]
        self._told = set(state["told"])
        self.study.fail_unclaimed({n for numbers in self._packs.values() for n in numbers})


class SwitchOffAwareASHA(ASHAScheduler):
    """ASHA that never cuts a trial before its Mixup switch-off epoch (sweeps.scheduling).

    Rungs reached before the trial's ``mixup.stop_epoch`` are recorded as usual (they shape the
    cut-offs for others); only the STOP decision there becomes CONTINUE.
    """

    def __init__(self, *, base_stop_epoch: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base_stop_epoch = base_stop_epoch

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        stop = trial_params(trial.config).get("mixup.stop_epoch", self._base_stop_epoch)
        if decision == TrialScheduler.STOP and not may_cut(
                epoch=result.get("epoch", 0), stop_epoch=stop, max_t=self._max_t):
            return TrialScheduler.CONTINUE
        return decision


def _scheduler(spec: SweepSpec) -> TrialScheduler:
    s = spec.scheduler
    if s.kind == "asha":
        return SwitchOffAwareASHA(
            base_stop_epoch=spec.base.mixup.stop_epoch, time_attr="epoch",
            grace_period=s.grace_period, max_t=s.max_t, reduction_factor=s.reduction_factor,
        )
    return FIFOScheduler()


# ---------------------------------------------------------------------------- fault injection

#: Folder of armed failpoints (tests and benchmarks/node_loss_stress.py only). A file
#: ``<name>.armed`` there makes the first trial process that reaches failpoint ``name`` claim it
#: (an atomic rename, so exactly one process does), write ``<name>.hit`` with its trial and node,
#: and wait until that file is removed or ``FAILPOINT_HOLD_S`` pass: the test kills the node
#: meanwhile, at a moment it knows exactly. The armed file may hold ``{"min_epoch": N}``.
FAILPOINT_ENV = "MIXUP_FAILPOINTS"
FAILPOINT_HOLD_S = 120.0


def _failpoint(name: str, *, trial_id: str, epoch: int = 0) -> None:
    folder = os.environ.get(FAILPOINT_ENV)
    if not folder:
        return
    armed, claimed = Path(folder) / f"{name}.armed", Path(folder) / f"{name}.claimed"
    try:
        condition = json.loads(armed.read_text() or "{}")
    except (OSError, ValueError):
        return
    if epoch < int(condition.get("min_epoch", 0)):
        return
    try:
        armed.rename(claimed)
    except OSError:
        return  # another process claimed it first
    hit = Path(folder) / f"{name}.hit"
    info = {"trial_id": trial_id, "epoch": epoch, "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id()}
    hit.with_suffix(".tmp").write_text(json.dumps(info))
    hit.with_suffix(".tmp").replace(hit)
    deadline = time.monotonic() + FAILPOINT_HOLD_S
    while hit.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


# ---------------------------------------------------------------------------- the trainable


class SweepTrainable(tune.Trainable):
    """One config over the spec's seeds; one ``step`` = every seed to its next logging epoch.

    A class trainable (not a function) so that reusing an actor for the next trial is our own
    ``reset_config``, which rebuilds the seed group.

    Each trial keeps its own state file, ``<sweep>/trial_states/<trial_id>.pt``, replaced
    atomically after every step together with the report of that step; Tune's own checkpoints
    are not used. Tune deletes a trial's old checkpoints as soon as newer ones are registered but
    writes its experiment state only now and then, so a driver killed in between left that state
    pointing at a deleted checkpoint and ``resume`` failed the trial ("Could not recover from
    checkpoint"). A trial that is retried (its node died) or resumed (its driver died) finds its
    file wherever it restarts, and first re-sends the last report it saved: the driver may not
    have received it, and records and MLflow keep one value per epoch, so nothing is lost or
    duplicated.
    """

    def setup(self, config: dict[str, Any], *, base: dict[str, Any],  # type: ignore[override]
              seeds: list[int], states: str) -> None:
        self._base, self._seeds, self._states = base, seeds, Path(states)
        self._node_id = ray.get_runtime_context().get_node_id()
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
        torch.set_num_threads(max(1, int(cpus)))
        gpu_ids = ray.get_gpu_ids()
        self._device = "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"
        _failpoint("setup", trial_id=self.trial_id)
        self._build(config)

    def _build(self, params: dict[str, Any]) -> None:
        config = from_flat({**self._base, **trial_params(params)})
        self._group = SeedGroup(config, self._seeds, device=self._device)
        self._state_path = self._states / f"{self.trial_id}.pt"
        self._resent: dict[str, Any] | None = None
        if self._state_path.is_file():
            state = torch.load(self._state_path, weights_only=True)
            self._group.load_state_dict(state["group"])
            self._resent = {**state["report"], "node_id": self._node_id}

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        _failpoint("reset", trial_id=self.trial_id)
        self._build(new_config)
        return True

    def step(self) -> dict[str, Any]:
        if self._resent is not None:  # restarted: the last saved report first
            report, self._resent = self._resent, None
            return report
        _failpoint("step", trial_id=self.trial_id, epoch=self._group.epoch)
        metrics = self._group.advance()
        report = {**metrics, "node_id": self._node_id, "trial/device": self._device,
                  "trial/compute_seconds": self._group.compute_seconds, "done": self._group.done}
        self._save(report)
        return report

    def _save(self, report: dict[str, Any]) -> None:
        self._states.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path.with_name(f".{self._state_path.name}.{os.getpid()}.tmp")
        torch.save({"group": self._group.state_dict(), "report": report}, tmp)
        os.replace(tmp, self._state_path)

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        """Unused (no Tune checkpoints are asked for); the state file is the checkpoint."""


class PackTrainable(tune.Trainable):
    """One pack of the user's trials (:mod:`sweeps.packing`) as one :class:`Pack`.

    Member trial j of the pack trains the spec's seeds as members j·S … j·S+S-1. One ``step``
    trains the pack until at least one member trial has logged an epoch with all its seeds (or
    has ended), and reports ``trials`` (trial id -> metrics aggregated over seeds, as a
    SeedGroup reports them) and ``finished`` (trial id -> [status, error]). A seed that diverges
    ends its trial as ERROR and takes its other seeds out of the pack; the other trials go on.
    State files and re-sent reports work as in :class:`SweepTrainable`, per pack.
    """

    def setup(self, config: dict[str, Any], *, base: dict[str, Any],  # type: ignore[override]
              seeds: list[int], states: str, rungs: str | None = None,
              metric: str = "") -> None:
        self._base, self._seeds, self._states = base, seeds, Path(states)
        # ASHA (scheduler.kind asha): the sweep's rung recorder judges each member trial
        self._rungs = ray.get_actor(rungs) if rungs else None
        self._metric = metric
        self._node_id = ray.get_runtime_context().get_node_id()
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
        torch.set_num_threads(max(1, int(cpus)))
        gpu_ids = ray.get_gpu_ids()
        self._device = "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"
        _failpoint("setup", trial_id=self.trial_id)
        self._build(config)

    def _build(self, params: dict[str, Any]) -> None:
        points: list[dict[str, Any]] = params[PACK_KEY]
        self._ids = [member_trial_id(self.trial_id, j) for j in range(len(points))]
        configs = []
        self._stop_epochs: list[int | None] = []
        for point in points:
            config = from_flat({**self._base, **point})
            self._stop_epochs.append(config.mixup.stop_epoch)
            configs += [config.replace(seed=seed) for seed in self._seeds]
        self._pack = Pack(configs, device=self._device)
        self._logged: dict[int, dict[int, dict[int, dict[str, float]]]] = {}
        self._open = list(range(len(points)))  # positions of trials not yet ended
        self._state_path = self._states / f"{self.trial_id}.pt"
        self._resent: dict[str, Any] | None = None
        if self._state_path.is_file():
            state = torch.load(self._state_path, weights_only=True)
            self._pack.load_state_dict(state["pack"])
            self._open = list(state["open"])
            self._resent = {**state["report"], "node_id": self._node_id}

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        _failpoint("reset", trial_id=self.trial_id)
        self._build(new_config)
        return True

    def _collect(self, trials: dict[str, Any], finished: dict[str, Any]) -> None:
        seeds = len(self._seeds)
        for member, metrics in self._pack.advance():
            j, s = divmod(member.index, seeds)
            self._logged.setdefault(j, {}).setdefault(int(metrics["epoch"]), {})[s] = metrics
        for j in list(self._open):
            members = self._pack.members[j * seeds:(j + 1) * seeds]
            diverged = [m for m in members if m.status == "diverged"]
            if diverged:
                for m in members:
                    self._pack.stop(m.index)
                finished[self._ids[j]] = ["ERROR", f"TrainingDiverged: {diverged[0].error}"]
                self._open.remove(j)
                continue
            for epoch, by_seed in sorted(self._logged.get(j, {}).items()):
                if len(by_seed) == seeds:
                    row = aggregate([by_seed[s] for s in range(seeds)])
                    row["trial/compute_seconds"] = sum(m.seconds for m in members)
                    trials[self._ids[j]] = row  # the latest complete epoch of this step
                    del self._logged[j][epoch]
            if all(m.status == "done" for m in members):
                finished[self._ids[j]] = ["TERMINATED", None]
                self._open.remove(j)
        if self._rungs is not None:
            self._judge(trials, finished)

    def _judge(self, trials: dict[str, Any], finished: dict[str, Any]) -> None:
        """ASHA: each member trial that reported is judged at its rung; a cut one is STOPPED
        and leaves the pack (its seeds' rows of the pack's GEMMs are dropped)."""
        judged = [(trial_id, float(row["epoch"]), float(row.get(self._metric, float("nan"))),
                   self._stop_epochs[self._ids.index(trial_id)])
                  for trial_id, row in trials.items()
                  if trial_id not in finished and math.isfinite(row.get(self._metric, math.nan))]
        if not judged:
            return
        cuts = ray.get(self._rungs.judge.remote(judged))  # type: ignore[union-attr]
        seeds = len(self._seeds)
        for (trial_id, _, _, _), cut in zip(judged, cuts, strict=True):
            j = self._ids.index(trial_id)
            if cut and j in self._open:
                for member in self._pack.members[j * seeds:(j + 1) * seeds]:
                    self._pack.stop(member.index)
                finished[trial_id] = ["STOPPED", None]
                self._open.remove(j)

    def step(self) -> dict[str, Any]:
        if self._resent is not None:  # restarted: the last saved report first
            report, self._resent = self._resent, None
            return report
        _failpoint("step", trial_id=self.trial_id,
                   epoch=max((m.epoch for m in self._pack.members), default=0))
        trials: dict[str, Any] = {}
        finished: dict[str, Any] = {}
        while not trials and not finished and not self._pack.done:
            self._collect(trials, finished)
        report = {"trials": trials, "finished": finished, "node_id": self._node_id,
                  "trial/device": self._device, "done": self._pack.done,
                  "epoch": max((m.epoch for m in self._pack.members), default=0)}
        self._save(report)
        return report

    def _save(self, report: dict[str, Any]) -> None:
        self._states.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path.with_name(f".{self._state_path.name}.{os.getpid()}.tmp")
        torch.save({"pack": self._pack.state_dict(), "open": self._open, "report": report}, tmp)
        os.replace(tmp, self._state_path)

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        """Unused (no Tune checkpoints are asked for); the state file is the checkpoint."""


def _trainable(spec: SweepSpec, sweep_dir: Path, pack: int = 1) -> Any:
    base = {k: v for k, v in to_flat(spec.base).items() if k not in spec.search_space}
    if base.get("data.root") and not Path(base["data.root"]).is_absolute():
        base["data.root"] = str(Path(base["data.root"]).resolve())  # as the driver sees it
    states = str(sweep_dir.resolve() / TRIAL_STATES)
    if pack > 1:
        rungs = _start_rung_recorder(spec, sweep_dir) if spec.scheduler.kind == "asha" else None
        trainable = tune.with_parameters(PackTrainable, base=base, seeds=list(spec.seeds),
                                         states=states, rungs=rungs, metric=spec.objective.metric)
    else:
        trainable = tune.with_parameters(SweepTrainable, base=base, seeds=list(spec.seeds),
                                         states=states)
    resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    return tune.with_resources(trainable, resources)


# ---------------------------------------------------------------------------- ASHA for packs

#: The rung recorder's file in the sweep folder: every judgment so far, for ``resume``.
RUNGS_FILE = "asha_rungs.json"


@ray.remote(num_cpus=0)
class _RungRecorder:
    """The sweep's ASHA rungs (sweeps.scheduling.Rungs), shared by all its packs.

    It lives on the driver's node, so it outlives any worker node; every judgment is written
    to ``asha_rungs.json`` before it is answered, so a resumed sweep (or a pack retried after a
    node died) gets the same answers again.
    """

    def __init__(self, path: str, settings: dict[str, Any]) -> None:
        self._path = Path(path)
        self._rungs = Rungs(**settings)
        if self._path.is_file():
            self._rungs.load(json.loads(self._path.read_text()))

    def judge(self, reports: list[tuple[str, float, float, int | None]]) -> list[bool]:
        cuts = [self._rungs.judge(*report) for report in reports]
        tmp = self._path.with_name(f".{self._path.name}.tmp")
        tmp.write_text(json.dumps(self._rungs.state()))
        os.replace(tmp, self._path)
        return cuts


def _start_rung_recorder(spec: SweepSpec, sweep_dir: Path) -> str:
    """Starts (or finds) the sweep's rung recorder on this node; returns its actor name."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    name = f"mixup_rungs:{sweep_dir.resolve().name}"
    s = spec.scheduler
    settings = {"grace_period": s.grace_period, "max_t": s.max_t,
                "reduction_factor": s.reduction_factor, "mode": spec.objective.mode}
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    _recorders[name] = _RungRecorder.options(  # type: ignore[attr-defined]  # held: lives with its handle
        name=name, get_if_exists=True, scheduling_strategy=here).remote(
        str(sweep_dir.resolve() / RUNGS_FILE), settings)
    return name


_recorders: dict[str, Any] = {}


# ---------------------------------------------------------------------------- node loss


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


def _retry_trials_whose_reused_actor_dies() -> None:
    TuneController._schedule_trial_reset = _schedule_trial_reset  # type: ignore[method-assign]


_tune_update_trial_queue = TuneController._maybe_update_trial_queue


def _update_trial_queue_then_checkpoint(self: TuneController) -> None:
    """Ray's ``_maybe_update_trial_queue``, then an experiment checkpoint if it added trials.

    Tune writes its experiment state now and then; a trial the searcher proposed after the last
    write was unknown to ``resume`` once the driver was killed, so it was proposed again under a
    new id while our records (and Optuna's journal) held the first one, started and never
    ended. Writing the state when trials are added, before any of them can start, closes that
    window; a sweep adds at most one Tune trial per pack (or trial), so this costs little.
    """
    count = len(self._trials)
    _tune_update_trial_queue(self)
    if len(self._trials) > count:
        self.checkpoint(force=True, wait=True)


def _checkpoint_when_trials_are_added() -> None:
    TuneController._maybe_update_trial_queue = (  # type: ignore[method-assign]
        _update_trial_queue_then_checkpoint)


# ---------------------------------------------------------------------------- events


def _error_line(trial: Any) -> str:
    """The last line of the trial's error (e.g. ``TrainingDiverged: train/loss became nan ...``).

    Tune writes the error file in the trial's local folder first and copies it to storage
    later, so the local file is read before ``Trial.get_error`` (which reads storage).
    """
    text = ""
    local = trial.error_file
    if local and os.path.exists(local):
        text = Path(local).read_text(errors="replace")
    if not text.strip():
        error = trial.get_error()
        text = str(error) if error is not None else ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"



class _Forwarder(tune.Callback):
    """Turns Tune's callbacks into EventSink calls; picklable (the sink is opened in setup)."""

    def __init__(self, factory: SinkFactory) -> None:
        self._factory = factory
        self._sink: EventSink | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"_factory": self._factory, "_sink": None}

    @property
    def sink(self) -> EventSink:
        if self._sink is None:
            self._sink = self._factory.open()
        return self._sink

    def setup(self, **info: Any) -> None:  # type: ignore[override]
        _ = self.sink

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if PACK_KEY in trial.config:
            points = trial.config[PACK_KEY]
            self.sink.pack_started(trial.trial_id, [
                (member_trial_id(trial.trial_id, j), point) for j, point in enumerate(points)])
        else:
            self.sink.trial_started(trial.trial_id, trial_params(trial.config))
        self._counts(trials)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any,
                        result: dict[str, Any], **info: Any) -> None:
        if "trials" not in result:
            self.sink.trial_result(trial.trial_id, result)
            return
        extra = {"node_id": result.get("node_id"), "trial/device": result.get("trial/device")}
        for member_id, metrics in result["trials"].items():
            self.sink.trial_result(member_id, {**metrics, **extra})
        for member_id, (status, error) in result["finished"].items():
            self.sink.trial_finished(member_id, status, error)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                          **info: Any) -> None:
        if PACK_KEY in trial.config:
            self.sink.pack_settled(trial.trial_id, "TERMINATED", None)
        else:
            self.sink.trial_finished(trial.trial_id, "TERMINATED", None)
        self._counts(trials)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if PACK_KEY in trial.config:
            self.sink.pack_settled(trial.trial_id, "ERROR", _error_line(trial))
        else:
            self.sink.trial_finished(trial.trial_id, "ERROR", _error_line(trial))
        self._counts(trials)

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if iteration % 20 == 0:
            self._counts(trials)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        # A driver killed between Tune finishing a trial and this callback hearing of it leaves
        # the trial open in our records; after a resume Tune does not report it again.
        for trial in trials:
            if trial.status in ("TERMINATED", "ERROR"):
                error = _error_line(trial) if trial.status == "ERROR" else None
                if PACK_KEY in trial.config:
                    self.sink.pack_settled(trial.trial_id, trial.status, error)
                else:
                    self.sink.trial_settled(trial.trial_id, trial.status, error)
        self._counts(trials)

    def _counts(self, trials: list[Any]) -> None:
        counts: dict[str, int] = {}
        for t in trials:
            counts[t.status] = counts.get(t.status, 0) + 1
        self.sink.progress(counts)


# ---------------------------------------------------------------------------- running


def connect(address: str | None, *, num_cpus: int | None = None) -> dict[str, Any]:
    """Starts local Ray on 127.0.0.1 (no dashboard), or joins the cluster at ``address``."""
    if not ray.is_initialized():
        # Trials read data from where the driver sees it: no per-trial chdir, absolute data root.
        data_root = Path(os.environ.get("MIXUP_DATA_ROOT") or "data").resolve()
        env_vars = {"RAY_CHDIR_TO_TRIAL_DIR": "0", "MIXUP_DATA_ROOT": str(data_root)}
        if os.environ.get(FAILPOINT_ENV):
            env_vars[FAILPOINT_ENV] = str(Path(os.environ[FAILPOINT_ENV]).resolve())
        # Start-up is quiet unless `run --verbose` (MIXUP_VERBOSE=1): Ray's warnings included.
        level = logging.WARNING if os.environ.get(VERBOSE_ENV) == "1" else logging.ERROR
        common: dict[str, Any] = {"log_to_driver": False, "logging_level": level,
                                  "configure_logging": True,
                                  "runtime_env": {"env_vars": env_vars}}
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False,
                     _node_ip_address="127.0.0.1", **common)
    return {"nodes": len([n for n in ray.nodes() if n.get("Alive")]),
            "cpus": ray.cluster_resources().get("CPU", 0.0),
            "gpus": ray.cluster_resources().get("GPU", 0.0),
            "memory": ray.cluster_resources().get("memory", 0.0)}  # bytes for tasks and actors


def _run_config(spec: SweepSpec, sweep_dir: Path, factory: SinkFactory,
                max_retries: int) -> tune.RunConfig:
    return tune.RunConfig(
        name=TUNE_DIR,
        storage_path=str(sweep_dir.resolve()),
        callbacks=[_Forwarder(factory)],
        failure_config=tune.FailureConfig(max_failures=max_retries),
        verbose=0,
    )


def _prepare_tune() -> None:
    _retry_trials_whose_reused_actor_dies()
    _checkpoint_when_trials_are_added()
    # Our records replace Tune's per-trial JSON/CSV/TensorBoard files (one less write per
    # result); its warnings about those files and about frequent snapshots are noise here.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


def run_sweep(spec: SweepSpec, sweep_dir: Path, factory: SinkFactory, *,
              max_retries: int = 2, pack: int = 1) -> None:
    """Runs ``spec`` to the end, ``pack`` trials per Tune trial; results flow through the sink."""
    _prepare_tune()
    if pack > 1:  # ASHA is judged inside the packs (_RungRecorder): no metric for Tune to watch
        if spec.search.algorithm == "optuna":
            search_alg: Any = ConcurrencyLimiter(PackSearcher(spec, pack, sweep_dir),
                                                 max_concurrent=spec.search.max_concurrent)
            samples = math.ceil(spec.search.num_samples / pack)
        else:
            search_alg = BasicVariantGenerator(max_concurrent=spec.search.max_concurrent)
            samples = 1
        tune_config = tune.TuneConfig(search_alg=search_alg, num_samples=samples,
                                      reuse_actors=True,
                                      trial_dirname_creator=lambda trial: trial.trial_id)
    else:
        single = len(spec.all_objectives) == 1  # several: the searcher holds them (fifo only)
        tune_config = tune.TuneConfig(
            metric=spec.objective.metric if single else None,
            mode=spec.objective.mode if single else None,
            search_alg=_searcher(spec), scheduler=_scheduler(spec),
            num_samples=spec.search.num_samples, reuse_actors=True,
            trial_dirname_creator=lambda trial: trial.trial_id)
    if pack <= 1:
        space = param_space(spec)
    else:
        space = {} if spec.search.algorithm == "optuna" else pack_space(spec, pack)
    tuner = tune.Tuner(
        _trainable(spec, sweep_dir, pack),
        param_space=space,
        tune_config=tune_config,
        run_config=_run_config(spec, sweep_dir, factory, max_retries),
    )
    tuner.fit()


def can_resume(sweep_dir: Path) -> bool:
    return tune.Tuner.can_restore(str((sweep_dir / TUNE_DIR).resolve()))


def resume_sweep(spec: SweepSpec, sweep_dir: Path, *, pack: int = 1) -> None:
    """Continues an interrupted sweep: unfinished and errored trials go on from checkpoints."""
    _prepare_tune()
    tuner = tune.Tuner.restore(
        str((sweep_dir / TUNE_DIR).resolve()), trainable=_trainable(spec, sweep_dir, pack),
        resume_unfinished=True, resume_errored=True,
        param_space=(param_space(spec) if pack <= 1 else
                     {} if spec.search.algorithm == "optuna" else pack_space(spec, pack)),
    )
    tuner.fit()


def shutdown() -> None:
    if ray.is_initialized():
        ray.shutdown()

