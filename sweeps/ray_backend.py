"""Ray Tune adapter: the only module that imports ray.

It turns a :class:`~sweeps.spec.SweepSpec` into a Tuner (search space, searcher, scheduler,
resources, checkpoints, retries), runs or restores it, and forwards every trial event to a
plain-Python :class:`EventSink` in the driver (records, MLflow, progress), which keeps Ray's
types out of the rest of the package.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

import ray
import torch
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, Searcher

from mixup_core.config import from_flat, to_flat
from sweeps.seed_group import SeedGroup
from sweeps.spec import Dimension, SweepSpec

TUNE_DIR = "tune"
STATE_FILE = "state.pt"


class EventSink(Protocol):
    """What the driver does with trial events (records, MLflow, progress)."""

    def trial_started(self, trial_id: str, params: dict[str, Any]) -> None: ...
    def trial_result(self, trial_id: str, result: dict[str, Any]) -> None: ...
    def trial_finished(self, trial_id: str, status: str, error: str | None) -> None: ...
    def trial_settled(self, trial_id: str, status: str, error: str | None) -> None: ...
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


def param_space(spec: SweepSpec) -> dict[str, Any]:
    return {key: _dimension(dim) for key, dim in spec.search_space.items()}


def _searcher(spec: SweepSpec) -> Searcher | BasicVariantGenerator:
    s = spec.search
    if s.algorithm == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        from sweeps.optuna_sampler import tpe_sampler

        optuna = OptunaSearch(metric=spec.objective.metric, mode=spec.objective.mode,
                              sampler=tpe_sampler(s.seed))
        return ConcurrencyLimiter(optuna, max_concurrent=s.max_concurrent)
    return BasicVariantGenerator(max_concurrent=s.max_concurrent, random_state=s.seed)


class SwitchOffAwareASHA(ASHAScheduler):
    """ASHA that never cuts a trial before its Mixup switch-off epoch has passed.

    Rungs reached before the trial's ``mixup.stop_epoch`` are recorded as usual (they shape the
    cut-offs for others), but a STOP decision there becomes CONTINUE: the point of a switch-off
    trial is what happens after the switch, so judging it earlier would be judging ERM-vs-Mixup
    at the wrong moment.
    """

    def __init__(self, *, base_stop_epoch: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base_stop_epoch = base_stop_epoch

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        stop = trial.config.get("mixup.stop_epoch", self._base_stop_epoch)
        epoch = result.get("epoch", 0)
        before_switch = stop is not None and epoch <= float(stop) and epoch < self._max_t
        if decision == TrialScheduler.STOP and before_switch:
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


# ---------------------------------------------------------------------------- the trainable


def train_trial(params: dict[str, Any], *, base: dict[str, Any], seeds: list[int]) -> None:
    """Ray Tune function trainable: one config over ``seeds``, resumable from its checkpoint."""
    config = from_flat({**base, **params})
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))
    gpu_ids = ray.get_gpu_ids()
    device = "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"
    group = SeedGroup(config, seeds, device=device)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            group.load_state_dict(torch.load(Path(folder) / STATE_FILE, weights_only=True))
    node_id = ray.get_runtime_context().get_node_id()
    while not group.done:
        metrics = group.advance()
        report = {**metrics, "node_id": node_id, "trial/compute_seconds": group.compute_seconds,
                  "trial/device": device}
        with tempfile.TemporaryDirectory() as folder:
            torch.save(group.state_dict(), Path(folder) / STATE_FILE)
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(folder))


def _trainable(spec: SweepSpec) -> Any:
    base = {k: v for k, v in to_flat(spec.base).items() if k not in spec.search_space}
    if base.get("data.root") and not Path(base["data.root"]).is_absolute():
        base["data.root"] = str(Path(base["data.root"]).resolve())  # as the driver sees it
    fn = tune.with_parameters(train_trial, base=base, seeds=list(spec.seeds))
    resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    return tune.with_resources(fn, resources)


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
        self.sink.trial_started(trial.trial_id, dict(trial.config))
        self._counts(trials)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any,
                        result: dict[str, Any], **info: Any) -> None:
        self.sink.trial_result(trial.trial_id, result)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                          **info: Any) -> None:
        self.sink.trial_finished(trial.trial_id, "TERMINATED", None)
        self._counts(trials)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
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
        common: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING,
                                  "configure_logging": True,
                                  "runtime_env": {"env_vars": env_vars}}
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False,
                     _node_ip_address="127.0.0.1", **common)
    return {"nodes": len([n for n in ray.nodes() if n.get("Alive")]),
            "cpus": ray.cluster_resources().get("CPU", 0.0),
            "gpus": ray.cluster_resources().get("GPU", 0.0)}


def _run_config(spec: SweepSpec, sweep_dir: Path, factory: SinkFactory,
                max_retries: int) -> tune.RunConfig:
    return tune.RunConfig(
        name=TUNE_DIR,
        storage_path=str(sweep_dir.resolve()),
        callbacks=[_Forwarder(factory)],
        failure_config=tune.FailureConfig(max_failures=max_retries),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=4),
        verbose=0,
    )


def _quiet_tune() -> None:
    # Our records replace Tune's per-trial JSON/CSV/TensorBoard files (one less write per
    # result); its warnings about those files and about frequent snapshots are noise here.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


def run_sweep(spec: SweepSpec, sweep_dir: Path, factory: SinkFactory, *,
              max_retries: int = 2) -> None:
    """Runs ``spec`` to the end; results flow through the sink."""
    _quiet_tune()
    tuner = tune.Tuner(
        _trainable(spec),
        param_space=param_space(spec),
        tune_config=tune.TuneConfig(
            metric=spec.objective.metric, mode=spec.objective.mode,
            search_alg=_searcher(spec), scheduler=_scheduler(spec),
            num_samples=spec.search.num_samples, reuse_actors=True,
            trial_dirname_creator=lambda trial: trial.trial_id,
        ),
        run_config=_run_config(spec, sweep_dir, factory, max_retries),
    )
    tuner.fit()


def can_resume(sweep_dir: Path) -> bool:
    return tune.Tuner.can_restore(str((sweep_dir / TUNE_DIR).resolve()))


def resume_sweep(spec: SweepSpec, sweep_dir: Path) -> None:
    """Continues an interrupted sweep: unfinished and errored trials go on from checkpoints."""
    _quiet_tune()
    tuner = tune.Tuner.restore(
        str((sweep_dir / TUNE_DIR).resolve()), trainable=_trainable(spec),
        resume_unfinished=True, resume_errored=True, param_space=param_space(spec),
    )
    tuner.fit()


def shutdown() -> None:
    if ray.is_initialized():
        ray.shutdown()

