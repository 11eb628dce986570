"""The Ray Tune trainables: a pack of trials, or one trial as a pack of one; failpoints for tests.

Trials run in Ray's worker processes; each keeps its state file in the sweep folder
(``trial_states/``), which is what a retried or resumed trial goes on from.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from mixup_core import plugin_specs
from mixup_core.config import from_flat, to_flat
from mixup_core.training import Pack, TrainingDiverged
from mixup_core.training.heap import keep_heap
from sweeps.execution.failpoints import failpoint
from sweeps.execution.packing import MEMBER_KEY, PACK_KEY, member_states, pack_members
from sweeps.execution.scheduling import Rungs
from sweeps.execution.seed_group import aggregate
from sweeps.spec import SweepSpec
from sweeps.store.layout import TRIAL_STATES

#: Tune's config key of a grid point (its dotted trial keys as one dict).
GRID_KEY = "grid_point"


#: A report's one-line warning for the driver to print (e.g. a state file that was unreadable).
WARNING_KEY = "trial/warning"


def _restart_line(path: Path, err: BaseException) -> str:
    cause = " ".join(str(err).split())[:160] or type(err).__name__
    return (f"{path.stem}: its state file {path.name} cannot be used ({type(err).__name__}: "
            f"{cause}); it restarts from epoch 0")


def _load_state(path: Path) -> dict[str, Any] | str | None:
    """The trial's saved state; None if it has none; a one-line warning if it is unreadable."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, weights_only=True)
    except Exception as err:  # torn, garbage, or from another torch: start afresh
        return _restart_line(path, err)
    return state if isinstance(state, dict) else _restart_line(path, TypeError("not a mapping"))


def trial_params(config: dict[str, Any]) -> dict[str, Any]:
    """A Tune trial config as dotted trial keys (its grid point unpacked)."""
    params = {key: value for key, value in config.items() if key != GRID_KEY}
    params.update(config.get(GRID_KEY) or {})
    return params


_recorders: dict[str, Any] = {}


# ---------------------------------------------------------------------------- the trainable


class _StateFileTrainable(tune.Trainable):
    """What both trainables share: where they run, their state file, the report they re-send.

    The state file, ``<sweep>/trial_states/<trial_id>.pt``, is replaced atomically after every
    step together with that step's report. One that cannot be used (torn, garbage, another
    shape) makes the trial start again from epoch 0, and its next report carries one warning.
    """

    _states: Path

    def _place(self) -> None:
        """Where this trial runs: its node, its CPU threads, CUDA when Ray gave it a GPU."""
        self._node_id = ray.get_runtime_context().get_node_id()
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
        torch.set_num_threads(max(1, int(cpus)))
        gpu_ids = ray.get_gpu_ids()
        self._device = "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"
        if self._device == "cpu":  # a pack's activations, B times a trial's, stay on the heap
            keep_heap()
        failpoint("setup", node_id=self._node_id, trial_id=self.trial_id)

    def _restore(self, apply: Callable[[dict[str, Any]], None]) -> bool:
        """Applies the trial's saved state (``apply``) and keeps its last report to re-send.

        Returns:
            False when the trial must start afresh: its state is unreadable or unusable (the
            warning is then kept for the next report). True otherwise, with or without a state.
        """
        self._state_path = self._states / f"{self.trial_id}.pt"
        self._resent: dict[str, Any] | None = None
        self._warning: str | None = None
        state = _load_state(self._state_path)
        if isinstance(state, str):
            self._warning = state
            return False
        if state is None:
            return True
        try:
            apply(state)
            self._resent = {**state["report"], "node_id": self._node_id}
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            self._warning = _restart_line(self._state_path, err)
            return False
        return True

    def _resend(self) -> dict[str, Any] | None:
        """A restarted trial's last saved report, once (the driver may have missed it)."""
        report, self._resent = self._resent, None
        return report

    def _save(self, report: dict[str, Any], state: dict[str, Any]) -> None:
        if self._warning is not None:
            report[WARNING_KEY], self._warning = self._warning, None
        self._states.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path.with_name(f".{self._state_path.name}.{os.getpid()}.tmp")
        torch.save({**state, "report": report}, tmp)
        os.replace(tmp, self._state_path)

    def _build(self, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        failpoint("reset", node_id=self._node_id, trial_id=self.trial_id)
        self._build(new_config)
        return True

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        """Unused (no Tune checkpoints are asked for); the state file is the checkpoint."""


class PackTrainable(_StateFileTrainable):
    """One pack of the user's trials (:mod:`sweeps.execution.packing`) as one :class:`Pack`.

    Member trial j of the pack trains the spec's seeds as members j·S … j·S+S-1. One ``step``
    trains the pack until at least one member trial has logged an epoch with all its seeds (or
    has ended), and reports ``trials`` (trial id -> metrics aggregated over seeds, as
    :func:`~sweeps.execution.seed_group.aggregate` makes them) and ``finished`` (trial id ->
    [status, error]). A seed that diverges ends its trial as ERROR and takes its other seeds out
    of the pack; the other trials go on.
    Each pack keeps its own state file, ``<sweep>/trial_states/<trial_id>.pt``, replaced
    atomically after every step together with the report of that step; Tune's own checkpoints
    are not used. Tune deletes a trial's old checkpoints as soon as newer ones are registered but
    writes its experiment state only now and then, so a driver killed in between left that state
    pointing at a deleted checkpoint and ``resume`` failed the trial ("Could not recover from
    checkpoint"). A pack that is retried (its node died) or resumed (its driver died) finds its
    file wherever it restarts, and first re-sends the last report it saved: the driver may not
    have received it, and records and MLflow keep one value per epoch, so nothing is lost or
    duplicated.
    """

    def setup(self, config: dict[str, Any], *, base: dict[str, Any],  # type: ignore[override]
              seeds: list[int], states: str, rungs: str | None = None,
              metric: str = "", plugins: tuple[str, ...] = ()) -> None:
        load_plugins(plugins)  # before any config names what they register
        self._base, self._seeds, self._states = base, seeds, Path(states)
        # ASHA (scheduler.kind asha): the sweep's rung recorder judges each member trial
        self._rungs = ray.get_actor(rungs) if rungs else None
        self._metric = metric
        self._place()
        self._build(config)

    def _build(self, params: dict[str, Any]) -> None:
        members = pack_members(self.trial_id, params[PACK_KEY])
        self._ids = [member_id for member_id, _, _ in members]
        points = [point for _, point, _ in members]
        configs = []
        self._stop_epochs: list[int | None] = []
        for point in points:
            config = from_flat({**self._base, **point})
            self._stop_epochs.append(config.mixup.stop_epoch)
            configs += [config.replace(seed=seed) for seed in self._seeds]
        self._pack = Pack(configs, device=self._device)
        self._logged: dict[int, dict[int, dict[int, dict[str, float]]]] = {}
        self._open = list(range(len(points)))  # positions of trials not yet ended

        def apply(state: dict[str, Any]) -> None:
            self._pack.load_state_dict(state["pack"])
            self._open = list(state["open"])

        fresh = not (self._states / f"{self.trial_id}.pt").is_file()
        if not self._restore(apply):  # unusable state: this pack starts again from epoch 0
            self._pack = Pack(configs, device=self._device)
            self._open = list(range(len(points)))
        elif fresh and self._split_from(members):
            self._go_on_from(members)

    def _split_from(self, members: list[tuple[str, dict[str, Any], str | None]]) -> bool:
        """Is this pack split off a failed pack that saved a state (packing.plan_split)? A
        pack that failed before it saved anything leaves nothing to go on from: epoch 0."""
        sources = {source for _, _, source in members if source}
        return bool(sources) and all((self._states / f"{s}.pt").is_file() for s in sources)

    def _go_on_from(self, members: list[tuple[str, dict[str, Any], str | None]]) -> None:
        """A split pack's first start: each member trial goes on from the state its seeds have
        in the state file of the pack it left (packing.plan_split), and that pack's last saved
        report of it is sent again first (the failed pack may have died before sending it)."""
        seeds = len(self._seeds)
        saved: list[dict[str, Any]] = []
        states: dict[str, Any] = {}
        trials: dict[str, Any] = {}
        finished: dict[str, Any] = {}
        path = self._state_path
        try:
            for member_id, _, from_pack in members:
                source = str(from_pack)
                path = self._states / f"{source}.pt"
                if source not in states:
                    states[source] = torch.load(path, weights_only=True)
                state = states[source]
                saved += member_states(state, source, member_id, seeds)
                report = state.get("report") or {}
                if member_id in report.get("trials", {}):
                    trials[member_id] = report["trials"][member_id]
                if member_id in report.get("finished", {}):
                    finished[member_id] = report["finished"][member_id]
            self._pack.load_state_dict({"members": saved})
        except Exception as err:  # the old pack's state cannot be used: start from epoch 0
            self._warning = _restart_line(path, err)
            self._pack = Pack([m.config for m in self._pack.members], device=self._device)
            return
        if trials or finished:
            self._resent = {"trials": trials, "finished": finished, "node_id": self._node_id,
                            "trial/device": self._device, "done": False,
                            "epoch": max((m.epoch for m in self._pack.members), default=0)}

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

    def _advance(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Trains until a member trial has logged an epoch with all its seeds, or has ended:
        (trial id -> aggregated metrics, trial id -> [status, error])."""
        failpoint("step", node_id=self._node_id, trial_id=self.trial_id,
                  epoch=max((m.epoch for m in self._pack.members), default=0))
        trials: dict[str, Any] = {}
        finished: dict[str, Any] = {}
        while not trials and not finished and not self._pack.done:
            self._collect(trials, finished)
        return trials, finished

    def _state(self) -> dict[str, Any]:
        return {"pack": self._pack.state_dict(), "open": self._open, "ids": self._ids}

    def step(self) -> dict[str, Any]:
        if (report := self._resend()) is not None:  # restarted: the last saved report first
            return report
        trials, finished = self._advance()
        report = {"trials": trials, "finished": finished, "node_id": self._node_id,
                  "trial/device": self._device, "done": self._pack.done,
                  "epoch": max((m.epoch for m in self._pack.members), default=0)}
        self._save(report, self._state())
        return report


class SweepTrainable(PackTrainable):
    """One trial per Ray trial (``pack: 1``): a pack of one trial whose members are its seeds.

    It trains like any pack, but reports the trial's own metrics (no ``trials`` map), so Tune's
    searchers and schedulers (ASHA) judge it as one trial, and a seed that diverges fails the
    trial (TrainingDiverged, naming the epoch). A class trainable (not a function) so that
    reusing an actor for the next trial is our own ``reset_config``.
    """

    def setup(self, config: dict[str, Any], *, base: dict[str, Any],  # type: ignore[override]
              seeds: list[int], states: str, plugins: tuple[str, ...] = ()) -> None:
        super().setup(config, base=base, seeds=seeds, states=states, plugins=plugins)

    def _build(self, params: dict[str, Any]) -> None:
        super()._build({PACK_KEY: [{**trial_params(params), MEMBER_KEY: self.trial_id}]})

    def step(self) -> dict[str, Any]:
        if (report := self._resend()) is not None:  # restarted: the last saved report first
            return report
        trials, finished = self._advance()
        status, error = finished.get(self.trial_id, (None, None))
        if status == "ERROR":
            raise TrainingDiverged(str(error).removeprefix("TrainingDiverged: "))
        report = {**trials[self.trial_id], "node_id": self._node_id,
                  "trial/device": self._device, "done": self._pack.done}
        self._save(report, self._state())
        return report


def plugin_modules(spec: SweepSpec) -> tuple[str, ...]:
    """The names a trial process imports the spec's plugins by: a local file or folder arrives
    there through Ray's runtime environment (``py_modules``) under its own name."""
    return tuple(plugin_specs.module_name(entry) for entry in spec.plugins)


def load_plugins(names: tuple[str, ...]) -> None:
    """Imports a trial process's plugins (and the installed entry points) once."""
    if names or plugin_specs.installed():
        from mixup_core import plugins

        plugins.load_installed()
        plugins.load(list(names))


def make_trainable(spec: SweepSpec, sweep_dir: Path, pack: int = 1) -> Any:
    base = {k: v for k, v in to_flat(spec.base).items() if k not in spec.search_space}
    if base.get("data.root") and not Path(base["data.root"]).is_absolute():
        base["data.root"] = str(Path(base["data.root"]).resolve())  # as the driver sees it
    states = str(sweep_dir.resolve() / TRIAL_STATES)
    if pack > 1:
        rungs = _start_rung_recorder(spec, sweep_dir) if spec.scheduler.kind == "asha" else None
        trainable = tune.with_parameters(PackTrainable, base=base, seeds=list(spec.seeds),
                                         states=states, rungs=rungs, metric=spec.objective.metric,
                                         plugins=plugin_modules(spec))
    else:
        trainable = tune.with_parameters(SweepTrainable, base=base, seeds=list(spec.seeds),
                                         states=states, plugins=plugin_modules(spec))
    gpu = spec.resources.gpu
    if pack > 1 and 0 < gpu < 1:
        gpu = 1.0  # a pack fills its device: whole GPUs (fractions stay valid for pack: 1)
    return tune.with_resources(trainable, {"cpu": spec.resources.cpu, "gpu": gpu})


# ---------------------------------------------------------------------------- ASHA for packs

#: The rung recorder's file in the sweep folder: every judgment so far, for ``resume``.
RUNGS_FILE = "asha_rungs.json"


@ray.remote(num_cpus=0)
class _RungRecorder:
    """The sweep's ASHA rungs (sweeps.execution.scheduling.Rungs), shared by all its packs.

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


