"""The Ray Tune adapter: a spec becomes a Tuner (search space, searcher, scheduler, resources,
retries), run or restored, with every trial event forwarded to a plain-Python
:class:`EventSink` in the driver (records, MLflow, progress), which keeps Ray's types out of the
rest of the package. Trials are :mod:`sweeps.execution.trainables`; Ray's internals are touched
only in :mod:`sweeps.execution.ray_patches`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, Searcher

from sweeps.errors import UsageError
from sweeps.execution import ray_patches
from sweeps.execution.failpoints import FAILPOINT_ENV
from sweeps.execution.packing import PACK_KEY, member_trial_id, pack_members, plan_packs
from sweeps.execution.scheduling import may_cut
from sweeps.execution.trainables import GRID_KEY, WARNING_KEY, make_trainable, trial_params
from sweeps.spec import Dimension, SweepSpec
from sweeps.store.layout import STD_SUFFIX, TUNE_DIR
from sweeps.store.tables import order_key

#: ``1``: Ray's and MLflow's start-up messages are shown (``mixup-sweep run --verbose``).
VERBOSE_ENV = "MIXUP_VERBOSE"


class EventSink(Protocol):
    """What the driver does with trial events (records, MLflow, progress)."""

    def trial_started(self, trial_id: str, params: dict[str, Any]) -> None: ...
    def trial_result(self, trial_id: str, result: dict[str, Any]) -> None: ...
    def trial_finished(self, trial_id: str, status: str, error: str | None) -> None: ...
    def trial_settled(self, trial_id: str, status: str, error: str | None) -> None: ...
    def pack_started(self, pack_id: str, members: list[tuple[str, dict[str, Any]]], *,
                     only_new: bool = False) -> None: ...
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
def param_space(spec: SweepSpec) -> dict[str, Any]:
    space = {key: _dimension(dim) for key, dim in spec.search_space.items() if dim.kind != "grid"}
    if any(dim.kind == "grid" for dim in spec.search_space.values()):
        space[GRID_KEY] = tune.grid_search([trial.point for trial in spec.grid_trials()])
    return space


def pack_space(spec: SweepSpec, size: int) -> dict[str, Any]:
    """One Tune grid dimension whose values are whole packs of grid points."""
    return {PACK_KEY: tune.grid_search(plan_packs(spec, size))}


def _tune_space(spec: SweepSpec, pack: int) -> dict[str, Any]:
    """Tune's param space: none for Optuna (its searcher hands out whole configs, or packs of
    them), else the grid and sampled keys (:func:`param_space`) or the planned packs."""
    if spec.search.algorithm == "optuna":
        return {}
    return param_space(spec) if pack <= 1 else pack_space(spec, pack)


def _searcher(spec: SweepSpec, sweep_dir: Path) -> Searcher | BasicVariantGenerator:
    """An unpacked sweep's searcher: Optuna's study in the sweep folder (:class:`PackSearcher`
    with packs of one), or Tune's random/grid generator."""
    s = spec.search
    if s.algorithm == "optuna":
        return ConcurrencyLimiter(PackSearcher(spec, 1, sweep_dir), max_concurrent=s.max_concurrent)
    return BasicVariantGenerator(max_concurrent=s.max_concurrent, random_state=s.seed)


#: The Optuna study of an Optuna sweep, in the sweep folder.
OPTUNA_JOURNAL = "optuna.journal"
#: User attributes of each Optuna trial: our trial id, how many seeds it averages, and the epoch
#: chosen so far (by the first objective, ``sweeps.store.tables.order_key``) with
#: ``best/<metric>`` and ``best/<metric>_std`` there for the objectives and every test metric,
#: the names of the trials table's columns.
_TRIAL_ID_ATTR, _SEEDS_ATTR, _EPOCH_ATTR, _BEST_ATTR = "trial_id", "seeds", "best_epoch", "best/"


class PackSearcher(Searcher):
    """Optuna for every Optuna sweep: each Tune trial asks the study for its config, or for a
    whole pack of configs when ``size`` > 1, and each (member) trial's result is told when it
    ends (the objective at its last report, as Ray Tune's ``OptunaSearch`` tells a trial's; a
    diverged trial fails its Optuna trial).

    The study lives in ``optuna.journal`` in the sweep folder (sweeps.optuna_adapter.JournalStudy),
    packed or not, so ``optuna-dashboard`` opens every Optuna sweep. While a trial trains, its
    objective per epoch is reported to its Optuna trial (intermediate values) and its user
    attributes (``trial_id``, ``seeds``, ``best_epoch``, ``best/<metric>``) follow its chosen
    epoch. Tune checkpoints which Optuna trials each Tune trial holds, so ``resume`` goes on
    with the same study and the same pending trials; the chosen epochs so far are read back
    from the journal.
    """

    def __init__(self, spec: SweepSpec, size: int, sweep_dir: Path) -> None:
        super().__init__()
        self._space = {key: (dim.kind, list(dim.values), dim.low, dim.high, dim.q)
                       for key, dim in spec.search_space.items()}
        self._size, self._total = size, spec.search.num_samples
        self._seeds = len(spec.seeds)
        self._journal = str(sweep_dir.resolve() / OPTUNA_JOURNAL)
        self._name, self._seed = sweep_dir.resolve().name, spec.search.seed
        self._objectives = [o.metric for o in spec.all_objectives]
        self._directions = [o.mode for o in spec.all_objectives]
        self._study: Any = None
        self._packs: dict[str, list[int]] = {}  # Tune trial id -> Optuna trial numbers
        #: member trial id -> each objective at its last report
        self._last: dict[str, dict[str, float]] = {}
        self._told: set[str] = set()
        #: member trial id -> the order key of its chosen epoch so far (rebuilt from the journal)
        self._chosen: dict[str, tuple[float, float, int, str]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_study": None}  # the study is reopened from its journal

    @property
    def study(self) -> Any:
        if self._study is None:
            from sweeps.optuna_adapter import JournalStudy

            self._study = JournalStudy(self._journal, name=self._name, space=self._space,
                                       modes=self._directions, seed=self._seed)
        return self._study

    def set_search_properties(self, metric: str | None, mode: str | None,
                              config: dict[str, Any], **spec: Any) -> bool:
        return True

    def _members(self, trial_id: str) -> list[tuple[str, int]]:
        """(our trial id, Optuna trial number) of each trial a Tune trial trains."""
        numbers = self._packs.get(trial_id, [])
        if self._size == 1:
            return [(trial_id, n) for n in numbers]
        return [(member_trial_id(trial_id, j), n) for j, n in enumerate(numbers)]

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if trial_id in self._packs:
            raise RuntimeError(f"{trial_id} was suggested twice")
        asked = sum(len(numbers) for numbers in self._packs.values())
        if asked >= self._total:
            return Searcher.FINISHED  # type: ignore[return-value]  # Ray's sentinel string
        trials = self.study.ask(min(self._size, self._total - asked))
        self._packs[trial_id] = [number for number, _ in trials]
        for member_id, number in self._members(trial_id):
            self.study.annotate(number, {_TRIAL_ID_ATTR: member_id, _SEEDS_ATTR: self._seeds})
        if self._size == 1:
            return trials[0][1]
        return {PACK_KEY: [params for _, params in trials]}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if self._size == 1:
            self._observe(trial_id, 0, result)
            return
        # Tune hands searchers the result flattened: "trials/<member>/<metric>", "finished/<member>"
        rows: dict[str, dict[str, Any]] = {}
        finished = []
        for key, value in result.items():
            head, _, rest = key.partition("/")
            if head == "trials":
                member_id, _, metric = rest.partition("/")
                rows.setdefault(member_id, {})[metric] = value
            elif head == "finished" and rest:
                finished.append((rest, value[0]))
        for member_id, row in rows.items():
            self._observe(trial_id, int(member_id.rsplit("-", 1)[1]), row)
        for member_id, status in finished:
            self._tell(trial_id, member_id, status)

    def _observe(self, trial_id: str, position: int, row: dict[str, Any]) -> None:
        """One epoch of a (member) trial: its objectives' last values, the first objective as
        the Optuna trial's intermediate value, and the user attributes of its chosen epoch when
        this epoch is chosen over the ones before (the rule of the trials table's best epoch)."""
        members = self._members(trial_id)
        if position >= len(members) or members[position][0] in self._told:
            return
        member_id, number = members[position]
        for metric in self._objectives:
            if metric in row:
                self._last.setdefault(member_id, {})[metric] = float(row[metric])
        first, epoch = self._objectives[0], row.get("epoch")
        value = _finite(row.get(first))
        if epoch is None or value is None:
            return
        self.study.report(number, int(epoch), value)
        key = order_key(value, _finite(row.get(first + STD_SUFFIX)), int(epoch), "",
                        self._directions[0])
        if member_id in self._chosen and self._chosen[member_id] <= key:
            return
        self._chosen[member_id] = key
        shown = [m for m in row if m.removesuffix(STD_SUFFIX) in self._objectives
                 or m.startswith("test/")]
        attrs = {_BEST_ATTR + m: v for m in shown if (v := _finite(row[m])) is not None}
        self.study.annotate(number, {_EPOCH_ATTR: int(epoch), **attrs})

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        if result:
            self.on_trial_result(trial_id, result)
        for member_id, _ in self._members(trial_id):
            self._tell(trial_id, member_id, "ERROR" if error else "TERMINATED")

    def _tell(self, trial_id: str, member_id: str, status: str) -> None:
        numbers = dict(self._members(trial_id))
        if member_id in self._told or member_id not in numbers:
            return
        last = self._last.get(member_id, {})
        values = None if status == "ERROR" or any(m not in last for m in self._objectives) \
            else [last[m] for m in self._objectives]
        self.study.tell(numbers[member_id], values)
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
        # the journal, not the checkpoint, knows each trial's chosen epoch up to the kill
        first, mode = self._objectives[0], self._directions[0]
        for attrs in self.study.running_attrs():
            value, epoch = _finite(attrs.get(_BEST_ATTR + first)), attrs.get(_EPOCH_ATTR)
            if _TRIAL_ID_ATTR in attrs and value is not None and epoch is not None:
                std = _finite(attrs.get(_BEST_ATTR + first + STD_SUFFIX))
                self._chosen[attrs[_TRIAL_ID_ATTR]] = order_key(value, std, int(epoch), "", mode)


def _finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number, else None (a missing metric, NaN)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class SwitchOffAwareASHA(ASHAScheduler):
    """ASHA that never cuts a trial before its Mixup switch-off epoch (sweeps.execution.scheduling).

    Rungs reached before the trial's ``mixup.stop_epoch`` are recorded as usual (they shape the
    cut-offs for others); only the STOP decision there becomes CONTINUE.
    """

    def __init__(self, *, base_stop_epoch: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base_stop_epoch = base_stop_epoch
        self._cut_max_t = kwargs["max_t"]  # our own copy: ASHAScheduler's is private

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        stop = trial_params(trial.config).get("mixup.stop_epoch", self._base_stop_epoch)
        if decision == TrialScheduler.STOP and not may_cut(
                epoch=result.get("epoch", 0), stop_epoch=stop, max_t=self._cut_max_t):
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



def _members(trial: Any) -> list[tuple[str, dict[str, Any]]]:
    """(member trial id, its trial keys) of a pack's Tune trial."""
    return [(member_id, point)
            for member_id, point, _ in pack_members(trial.trial_id, trial.config[PACK_KEY])]


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
            self.sink.pack_started(trial.trial_id, _members(trial))
        else:
            self.sink.trial_started(trial.trial_id, trial_params(trial.config))
        self._counts(trials)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any,
                        result: dict[str, Any], **info: Any) -> None:
        if warning := result.get(WARNING_KEY):  # e.g. an unreadable state file: one line
            print(f"warning: {warning}", file=sys.stderr, flush=True)
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

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any,
                         **info: Any) -> None:
        print(f"note: Ray trial {trial.trial_id} failed ({_error_line(trial)}); retried from its "
              f"state file (failure {trial.num_failures}; --verbose shows Ray's traceback)",
              file=sys.stderr, flush=True)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if PACK_KEY in trial.config:
            # a pack that failed before it started (e.g. while handed to a reused actor) has no
            # member records yet: they are made now, so its trials are split, never lost
            self.sink.pack_started(trial.trial_id, _members(trial), only_new=True)
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


#: How long a driver tries to reach a cluster's head before it gives up (one line, exit 2).
JOIN_TIMEOUT_S = 10.0


def connect(address: str | None, *, num_cpus: int | None = None,
            py_modules: Sequence[str] = ()) -> dict[str, Any]:
    """Starts a private local Ray on 127.0.0.1 (no dashboard), or joins the cluster at ``address``.

    Without an address the runtime is this process's own, whatever ``RAY_ADDRESS`` or Ray's
    current-cluster file name (``address="local"``); ``auto`` joins the running cluster on
    purpose. ``py_modules`` (local plugin files and folders, :mod:`mixup_core.plugins`) travel
    to every node in Ray's runtime environment, importable there by their names.
    A head that cannot be reached fails within ``JOIN_TIMEOUT_S`` with a UsageError
    (Ray itself would retry for minutes).
    """
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
        if py_modules:
            common["runtime_env"]["py_modules"] = list(py_modules)
        if address:
            _reachable(address)
            try:
                with _quiet_stderr(os.environ.get(VERBOSE_ENV) != "1"):
                    ray.init(address=address, **common)
            except Exception as err:  # ConnectionError, an auth error, a version mismatch
                lines = [x for x in str(err).strip().splitlines() if x.strip()] or ["?"]
                raise UsageError(f"--address {address}: cannot join the Ray cluster "
                                 f"({type(err).__name__}: {lines[0][:200]})") from None
        else:
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                     _node_ip_address="127.0.0.1", **common)
    return {"nodes": len([n for n in ray.nodes() if n.get("Alive")]),
            "cpus": ray.cluster_resources().get("CPU", 0.0),
            "gpus": ray.cluster_resources().get("GPU", 0.0),
            "memory": ray.cluster_resources().get("memory", 0.0)}  # bytes for tasks and actors


@contextlib.contextmanager
def _quiet_stderr(quiet: bool) -> Iterator[None]:
    """Ray's C++ client writes its retries to file descriptor 2 while it joins a cluster (20
    lines of ``Failed to get cluster ID from GCS server`` before it gives up); a non-verbose
    driver says what happened in one line instead. Used only when joining: a local start
    spawns Ray's own processes, which would inherit the redirection."""
    if not quiet:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _reachable(address: str) -> None:
    """A ``host:port`` head must accept a TCP connection within ``JOIN_TIMEOUT_S``."""
    host, sep, port = address.rpartition(":")
    if address == "auto" or "://" in address or not sep or not port.isdigit():
        return  # Ray resolves these itself
    try:
        socket.create_connection((host, int(port)), timeout=JOIN_TIMEOUT_S).close()
    except OSError as err:
        raise UsageError(f"--address {address}: no Ray head answers there "
                         f"({err.strerror or type(err).__name__})") from None
    if os.environ.get("RAY_USE_TLS", "0") not in ("0", ""):
        return  # a TLS head answers TLS first: Ray checks it itself
    if not _speaks_http2(host, int(port)):  # a web server, say: Ray would retry for minutes
        raise UsageError(f"--address {address}: something answers there, but not a Ray head "
                         "(it does not speak gRPC)")


#: HTTP/2's client preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5).
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _speaks_http2(host: str, port: int) -> bool:
    """Does the server answer HTTP/2's preface with a SETTINGS frame, as a gRPC server (Ray's
    head) must? A frame header is 9 bytes: length (3), type (1: 0x4 is SETTINGS), flags, id."""
    try:
        with socket.create_connection((host, port), timeout=JOIN_TIMEOUT_S) as conn:
            conn.settimeout(JOIN_TIMEOUT_S)
            conn.sendall(_HTTP2_PREFACE)
            header = b""
            while len(header) < 9:
                chunk = conn.recv(9 - len(header))
                if not chunk:
                    return False
                header += chunk
    except OSError:
        return False
    return header[3] == 0x4


def _run_config(spec: SweepSpec, sweep_dir: Path, factory: SinkFactory, *,
                name: str = TUNE_DIR) -> tune.RunConfig:
    return tune.RunConfig(
        name=name,
        storage_path=str(sweep_dir.resolve()),
        callbacks=[_Forwarder(factory)],
        failure_config=tune.FailureConfig(max_failures=spec.retries),
        verbose=0,
    )


def _prepare_tune() -> None:
    ray_patches.install()
    # Our records replace Tune's per-trial JSON/CSV/TensorBoard files (one less write per
    # result); its warnings about those files and about frequent snapshots are noise here.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    if os.environ.get(VERBOSE_ENV) != "1":  # a lost worker is one line (_Forwarder), not Ray's
        logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)
        # "Trials did not complete": the driver says what ended how (and splits failed packs)
        logging.getLogger("ray.tune.tune").setLevel(logging.CRITICAL)


def run_sweep(spec: SweepSpec, sweep_dir: Path, factory: SinkFactory, *,
              pack: int = 1) -> None:
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
            search_alg=_searcher(spec, sweep_dir), scheduler=_scheduler(spec),
            num_samples=spec.search.num_samples, reuse_actors=True,
            trial_dirname_creator=lambda trial: trial.trial_id)
    tuner = tune.Tuner(
        make_trainable(spec, sweep_dir, pack),
        param_space=_tune_space(spec, pack),
        tune_config=tune_config,
        run_config=_run_config(spec, sweep_dir, factory),
    )
    tuner.fit()


def run_packs(spec: SweepSpec, sweep_dir: Path, factory: SinkFactory, *,
              packs: list[list[dict[str, Any]]], name: str) -> None:
    """Runs the given packs (a split round, packing.plan_split) as Tune experiment ``name``
    in the sweep folder, one Tune trial per pack."""
    _prepare_tune()
    tuner = tune.Tuner(
        make_trainable(spec, sweep_dir, pack=2),  # any size > 1: the pack trainable
        param_space={PACK_KEY: tune.grid_search(packs)},
        tune_config=tune.TuneConfig(
            search_alg=BasicVariantGenerator(max_concurrent=spec.search.max_concurrent),
            num_samples=1, reuse_actors=True,
            trial_dirname_creator=lambda trial: trial.trial_id),
        run_config=_run_config(spec, sweep_dir, factory, name=name),
    )
    tuner.fit()


def can_resume(sweep_dir: Path) -> bool:
    return tune.Tuner.can_restore(str((sweep_dir / TUNE_DIR).resolve()))


def resume_sweep(spec: SweepSpec, sweep_dir: Path, *, pack: int = 1,
                 packs: list[list[dict[str, Any]]] | None = None, name: str = TUNE_DIR) -> None:
    """Continues an interrupted sweep (Tune experiment ``name``: the sweep's own, or the split
    round of ``packs``): unfinished and errored trials go on from their state files."""
    _prepare_tune()
    if packs is not None:
        space: dict[str, Any] = {PACK_KEY: tune.grid_search(packs)}
    else:
        space = _tune_space(spec, pack)
    tuner = tune.Tuner.restore(
        str((sweep_dir / name).resolve()),
        trainable=make_trainable(spec, sweep_dir, pack if packs is None else 2),
        resume_unfinished=True, resume_errored=True, param_space=space,
    )
    tuner.fit()


def shutdown() -> None:
    if ray.is_initialized():
        ray.shutdown()

