"""The MLflow adapter: one parent run per sweep, one nested child run per trial.

This is the only module of the project that imports mlflow, and it does so lazily, so
``from sweeps.tracking.tracker import TrackingUnavailable`` stays cheap for the CLI. The sweep driver is
the only writer (trials never talk to MLflow), so parallel trials never contend for a sqlite
store; the driver creates the store and the experiment before any trial starts, which also
avoids MLflow's schema-migration race between processes that open a fresh store at once.

Runs are found again by their tags, so a resumed or restarted driver reattaches to its runs:

* parent: ``mixup_sweeps.sweep=<name>``, ``mixup_sweeps.role=parent``; run name = sweep name;
  params = the sweep's settings and, once a trial has started, the config keys that are the
  same in every trial (all but the searched ones) and the sweep-wide ``extra_params``.
* child: ``mixup_sweeps.sweep``, ``mixup_sweeps.role=child``, ``mixup_sweeps.trial_id`` and
  ``mlflow.parentRunId`` (what the UI nests by); run name = its searched settings (else its
  trial id); params = the searched keys as strings (the keys that vary across trials; every
  config key when the tracker is not told the searched keys), and
  ``mixup_sweeps.config_json`` = the whole config with its types.
* descriptions (``mlflow.note.content``, sweeps.tracking.answer): a child's says what it
  stands for and, once it has ended, its chosen epoch; the parent's the sweep's answer.

Epoch metrics are logged with step = epoch (one ``log_batch`` request per report through
MLflow's API; in a sqlite store whose schema revision the bulk writer was tested against, a
writer pass's trials all in one transaction, see :class:`SqliteBatch`: each tracker asks the
store once, and any other store gets MLflow's API), and a step already logged for a run is
never logged again. Values that are not finite numbers are skipped: MLflow keeps NaN but
silently stores ±inf as ±1.797e308, a number charts and maxima would take at face value; a
skipped value reads back as NaN from :meth:`SweepTracker.read_sweep`, as it does from the
Parquet tables.

MLflow retries failed HTTP requests itself (connection errors, 429 and 5xx;
``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` = 7 with exponential backoff: minutes).
:meth:`SweepTracker.check` alone cuts that to one try of at most ``CHECK_TIMEOUT_S`` seconds.
Every request is made by one of the small methods at the end of :class:`SweepTracker`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeps.errors import TrackingUnavailable, UsageError
from sweeps.store.layout import BEST_PREFIX, CONFIG_PREFIX, LAST_PREFIX
from sweeps.tracking import answer
from sweeps.tracking.answer import NOTE, run_name
from sweeps.tracking.sqlite_batch import SqliteBatch, TrialPlan, seed_store

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities import Metric, Run
    from mlflow.tracking import MlflowClient

__all__ = ["RUN_STATUS", "SweepTracker", "TrackingUnavailable", "TrialWrite", "default_tracking_uri",
           "prewarm"]

TAG_SWEEP = "mixup_sweeps.sweep"
#: The sweep's own id (``sweep.json``'s ``sweep_id``): two sweeps of one name never mix runs.
TAG_SWEEP_ID = "mixup_sweeps.sweep_id"
TAG_ROLE = "mixup_sweeps.role"
TAG_TRIAL = "mixup_sweeps.trial_id"
TAG_STATUS = "mixup_sweeps.status"
TAG_ERROR = "mixup_sweeps.error"
TAG_NODE = "mixup_sweeps.node_id"
TAG_CONFIG = "mixup_sweeps.config_json"
TAG_SUMMARY_KEYS = "mixup_sweeps.summary_keys"
TAG_PARENT = "mlflow.parentRunId"
SUMMARY_PREFIXES = (BEST_PREFIX, LAST_PREFIX)
MAX_ERROR_CHARS = 5000
CHECK_TIMEOUT_S = 3

#: Trial and sweep statuses (Ray's, STOPPED = cut short by the scheduler, and MLflow's own)
#: -> the MLflow run status. The status as given is kept in the ``mixup_sweeps.status`` tag.
RUN_STATUS = {"TERMINATED": "FINISHED", "STOPPED": "FINISHED", "ERROR": "FAILED",
              "FINISHED": "FINISHED", "FAILED": "FAILED", "KILLED": "KILLED"}

# MLflow's limits (mlflow/utils/validation.py): longer values are truncated, bigger batches refused.
_MAX_PARAM_CHARS = 6000
_MAX_TAG_CHARS = 8000
_MAX_PARAMS_OR_TAGS_PER_BATCH = 100
_MAX_ENTITIES_PER_BATCH = 1000


def default_tracking_uri(cwd: Path) -> str:
    """The tracking URI to use when none is given.

    Args:
        cwd: The directory for the embedded store (the CLI passes the working directory).

    Returns:
        ``$MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<absolute cwd>/mlflow.db``
        (MLflow 3.17 refuses the old ``./mlruns`` file store).
    """
    given = os.environ.get("MLFLOW_TRACKING_URI")
    if not given:
        return f"sqlite:///{Path(cwd).resolve() / 'mlflow.db'}"
    check_uri(given, cwd, flag="$MLFLOW_TRACKING_URI")
    return absolute_uri(given, cwd)


def resolve_tracking_uri(given: str | None, cwd: Path, *, flag: str = "--tracking-uri") -> str:
    """The URI a command uses: ``given`` made absolute, else :func:`default_tracking_uri`.

    Raises:
        UsageError: ``given`` (or ``$MLFLOW_TRACKING_URI``) is a plain path, not a URI; one
            line naming ``flag`` and the URI it likely means (:func:`check_uri`).
    """
    if not given:
        return default_tracking_uri(cwd)
    check_uri(given, cwd, flag=flag)
    return absolute_uri(given, cwd)


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def check_uri(uri: str, cwd: Path, *, flag: str) -> None:
    """Refuses a tracking URI that is a plain path (``./mlflow.db``, ``mlruns``), which MLflow
    would take for its old file store and fail on with a long traceback.

    Raises:
        UsageError: ``<flag> <uri>: not a URI; did you mean sqlite:///<absolute path>?`` (for
            a folder, its ``mlflow.db``; ``file://`` for a folder that is a file store).
    """
    if _SCHEME.match(uri):
        return
    path = (Path(cwd) / Path(uri).expanduser()).resolve()
    if path.is_dir() and (path.name == "mlruns" or any(path.glob("*/meta.yaml"))
                          or (path / "meta.yaml").is_file()):
        meant = f"file://{path} (MLflow's old file store; MLflow 3 writes sqlite:///...)"
    elif path.is_dir():
        meant = f"sqlite:///{path / 'mlflow.db'}"
    else:
        meant = f"sqlite:///{path}"
    raise UsageError(f"{flag} {uri}: not a URI; did you mean {meant}?")


@dataclass(frozen=True)
class TrialWrite:
    """One trial's writes since the driver's last pass (see :meth:`SweepTracker.write_trial`)."""

    trial_id: str
    start: tuple[Mapping[str, Any], Mapping[str, str], bool] | None = None
    epochs: Sequence[tuple[int, Mapping[str, float]]] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    finish: tuple[str, Mapping[str, float], str | None] | None = None


def prewarm(tracking_uri: str) -> threading.Thread:
    """Starts, in a daemon thread, what a sweep's first MLflow call costs on a local sqlite
    store (importing MLflow, copying in a new store, building the client and its SQLAlchemy
    store: ~2 s), so that it runs while Ray starts. Join the thread before the first real
    call; whatever fails here is left for that call to report. Other stores: nothing."""

    def warm() -> None:
        with contextlib.suppress(Exception):
            from mlflow.tracking import MlflowClient

            seed_store(tracking_uri)
            MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)

    thread = threading.Thread(target=warm, name="mlflow-prewarm", daemon=True)
    if tracking_uri.startswith("sqlite:"):
        thread.start()
    return thread


class SweepTracker:
    """Mirrors one sweep into MLflow: a parent run, one nested child run per trial.

    Meant for the sweep driver, a single writer; not thread-safe. Uses its own
    ``MlflowClient``, never MLflow's global "active run" state.

    Args:
        tracking_uri: ``sqlite:///ABSOLUTE/PATH`` or ``http(s)://host:port``.
        sweep_name: The sweep's name: the parent run's name and the tag that finds its runs.
        sweep_id: The sweep's id (``sweep.json``): every run is tagged with it and found by it,
            so sweeps of one name from two storage folders never share a run. None: a sweep
            from before ids, found by its name.
        experiment_name: Defaults to ``mixup-sweeps/<sweep_name>``.
        batched: False: :meth:`write_trials` keeps to MLflow's API; otherwise as
            :attr:`batched` decides.
    """

    def __init__(self, tracking_uri: str, *, sweep_name: str,
                 experiment_name: str | None = None,
                 param_keys: Collection[str] | None = None,
                 extra_params: Mapping[str, Any] | None = None,
                 name_keys: Sequence[str] = (), batched: bool | None = None,
                 sweep_id: str | None = None) -> None:
        _quoted(sweep_name)  # refuse a name we could not search for, before anything is logged
        #: The config keys a child run logs as params when the searched keys (``name_keys``)
        #: are not given (None: all); the whole config is its ``mixup_sweeps.config_json`` tag.
        self.param_keys = None if param_keys is None else frozenset(param_keys)
        #: Sweep-wide params (e.g. the seeds): on the parent run when the searched keys are
        #: known, else on every child run.
        self.extra_params = _params(extra_params or {})
        #: The searched keys: they name a child run (``α=1 same off@500``; none: its trial id)
        #: and are its params; the other config keys are the same in every trial and are
        #: logged once, on the parent run (a key whose value differs from it there is a
        #: child's param too). None given: a child run logs every key of ``param_keys``.
        self.name_keys = list(name_keys)
        self.tracking_uri = tracking_uri
        self.sweep_name = sweep_name
        self.sweep_id = sweep_id
        self.experiment_name = experiment_name or f"mixup-sweeps/{sweep_name}"
        self._mlflow: MlflowClient | None = None
        self._experiment_id: str | None = None
        self._parent_id: str | None = None
        self._runs: dict[str, str] = {}  # trial id -> child run id
        #: The objective (metric, mode), read from the parent's params (``spec.objective.*``):
        #: a child's description names the epoch chosen on it.
        self._objective: tuple[str, str] | None = None
        self._sweep_note = ""  # the parent's description as the sweep began (its spec's)
        self._parent_params: dict[str, str] = {}  # what the parent run has logged
        self._base_logged = False  # the constant config keys are on the parent run
        self._about: dict[str, tuple[str, int]] = {}  # trial id -> (its description, seeds)
        self._last_step: dict[str, int | None] = {}  # run id -> last epoch logged (None: none)
        #: :meth:`write_trials` writes a sqlite store in one transaction (None: not decided yet,
        #: see :attr:`batched`); ``batched=False`` keeps to MLflow's API.
        maybe = batched is not False and _is_sqlite(tracking_uri)
        self._batched: bool | None = None if maybe else False
        self._batch: SqliteBatch | None = None

    @property
    def batched(self) -> bool:
        """Whether :meth:`write_trials` writes a pass in one transaction (:class:`SqliteBatch`):
        only into a sqlite store at a schema revision that writer was tested against
        (:meth:`SqliteBatch.usable`), asked once, by the first pass with something to write;
        any other store gets MLflow's API."""
        if self._batched is None:
            self._batched = SqliteBatch.usable(self.tracking_uri)
        return self._batched

    @property
    def parent_run_id(self) -> str | None:
        """The sweep's parent run once :meth:`start_sweep` has run."""
        return self._parent_id

    def forget(self, trial_id: str) -> None:
        """Drops what this tracker remembers of a trial's run (its id, last logged step).

        After a failed request nobody knows whether the server applied it; the next call for the
        trial then re-reads the run from the server, so a replay neither repeats nor skips a step.
        """
        run_id = self._runs.pop(trial_id, None)
        if run_id is not None:
            self._last_step.pop(run_id, None)

    # ------------------------------------------------------------------------ sweep lifecycle

    def check(self) -> None:
        """Makes one request to the store, so that a wrong URI fails before the sweep starts.

        Over HTTP it is one try of at most ``CHECK_TIMEOUT_S`` seconds, not MLflow's minutes of
        retries. A sqlite store is created here (with its schema) if it does not exist yet.

        Raises:
            TrackingUnavailable: One line naming the URI and why it cannot be used.
        """
        quick = (bounded_http(CHECK_TIMEOUT_S) if _is_http(self.tracking_uri)
                 else _creating_sqlite_store(self.tracking_uri))
        try:
            with quick:
                self._client.search_experiments(max_results=1)
            rebase_artifacts(self.tracking_uri)
        except Exception as err:  # whatever failed, the store is unusable: say why on one line
            raise tracking_unusable(self.tracking_uri, err) from err

    def ensure_experiment(self) -> str:
        """The experiment's id, creating it the first time. Call it before trials start.

        Raises:
            TrackingUnavailable: The experiment exists but was deleted in MLflow.
        """
        if self._experiment_id is None:
            self._experiment_id = self._find_experiment() or self._create_experiment()
        return self._experiment_id

    def existing_experiment_id(self) -> str | None:
        """The sweep's experiment id if the store has it (nothing is created)."""
        return self._find_experiment()

    def runs_page(self, *, metric: str, mode: str, metrics: Sequence[str] = ()) -> str | None:
        """The path in MLflow's UI (``/#/experiments/<id>/runs?...``) of the sweep's child runs,
        flat (not nested under the parent run) and sorted by ``best/<metric>``, each trial's
        value at its chosen epoch, best first; None when the store has no experiment for it.

        The view (filter, order, and as columns ``best/<metric>``, its std, ``best_epoch``,
        ``metrics`` and the searched keys) is saved as an experiment tag the UI opens it from
        (``viewStateShareKey``, sweeps.tracking.answer); where that tag cannot be written, the
        URL itself carries the filter and the order, and MLflow picks the columns.
        """
        experiment = self._find_experiment()
        if experiment is None:
            return None
        view = answer.runs_view(self._filter("child"), metric=metric, mode=mode,
                                metrics=metrics, params=self.name_keys)
        key = answer.view_key(view)
        try:
            self._client.set_experiment_tag(experiment, answer.SHARED_VIEW + key,
                                            json.dumps(view))
        except Exception:  # e.g. no EDIT permission on a server: the URL alone still sorts
            return f"/#/experiments/{experiment}/runs?{answer.view_query(view)}"
        return f"/#/experiments/{experiment}/runs?{answer.view_query(view, key)}"

    def start_sweep(self, *, params: Mapping[str, Any], tags: Mapping[str, str],
                    parent_run_id: str | None = None) -> str:
        """Opens the sweep's parent run, or reopens the one a previous driver left.

        Args:
            params: The sweep's settings as flat dotted keys; values are logged as ``str()``.
                ``spec.objective.metric`` and ``spec.objective.mode`` name the objective a
                child's description gives its chosen epoch by.
            tags: Extra tags (git commit, spec path...), set again on every start;
                ``mlflow.note.content`` (the description) ends the sweep's answer.
            parent_run_id: The parent recorded by a previous driver; if it no longer exists, the
                parent is looked up by its tags, and a new one made if there is none.

        Returns:
            The parent run id.

        Raises:
            ValueError: ``parent_run_id`` is another sweep's run, or a param would change value.
        """
        run = self._given_parent(parent_run_id) if parent_run_id else None
        run = run or self._find_one(self._filter("parent"))
        all_tags = {**_strings(tags), TAG_SWEEP: self.sweep_name, TAG_ROLE: "parent",
                    TAG_STATUS: "RUNNING", **self._id_tag()}
        flat = _params(params)
        if run is None:
            self._parent_id = self._create_run(self.sweep_name, all_tags)
            self._log_batch(self._parent_id, params=flat)
            self._parent_params = dict(flat)
        else:
            self._parent_id = run.info.run_id
            self._log_batch(self._parent_id, params=_unlogged(run, flat), tags=all_tags)
            if run.info.status != "RUNNING":
                self._reopen(self._parent_id)
            self._parent_params = {**run.data.params, **flat}
        if "spec.objective.metric" in flat:
            self._objective = (flat["spec.objective.metric"],
                               flat.get("spec.objective.mode", "max"))
        self._sweep_note = all_tags.get(NOTE, "")
        return self._parent_id

    def set_best(self, *, trial_id: str, name: str, metric: str, value: float,
                 epoch: int) -> None:
        """Shows the sweep's answer on its parent run: tags naming the best trial (its id, its
        run name, the epoch chosen) and the value as the metric ``best/<metric>``."""
        self._log_batch(self._require_parent(),
                        metrics=_finite({f"{BEST_PREFIX}{metric}": value}),
                        tags={"mixup_sweeps.best_trial": trial_id,
                              "mixup_sweeps.best_settings": name or trial_id,
                              "mixup_sweeps.best_epoch": str(epoch)})

    def describe_best(self, best: Mapping[str, Any], *, metric: str, trials: int,
                      seeds: int) -> None:
        """Writes the sweep's answer as the parent run's description (its overview in MLflow's
        UI): the best trial in words, the objective with its spread at the chosen epoch, the
        test metrics there and how many trials tie, then the spec's description.

        Args:
            best: The first row of ``Sweep.best`` (``trial_id``, ``epoch``, ``value``, ``ties``,
                ``config/<key>``, the metrics at that epoch and their ``_std``).
            metric: The objective the row is ranked by.
            trials: How many trials the sweep ran.
            seeds: How many seeds each value is a mean over.
        """
        mode = self._objective[1] if self._objective and self._objective[0] == metric else "max"
        note = answer.best_note(best, metric=metric, mode=mode, keys=self.name_keys,
                                trials=trials, seeds=seeds, sweep_name=self.sweep_name,
                                description=self._sweep_note)
        self._log_batch(self._require_parent(), tags={NOTE: note[:_MAX_TAG_CHARS]})

    def finish_sweep(self, status: str) -> None:
        """Ends the parent run; child runs still RUNNING (trials never finished) become KILLED.

        Args:
            status: A key of :data:`RUN_STATUS`, e.g. ``"FINISHED"`` or ``"FAILED"``.
        """
        mlflow_status = _mlflow_status(status)
        parent_id = self._require_parent()
        for run in self._search(self._filter("child") + " and attributes.status = 'RUNNING'"):
            self._log_batch(run.info.run_id, tags={TAG_STATUS: "KILLED"})
            self._terminate(run.info.run_id, "KILLED")
        self._log_batch(parent_id, tags={TAG_STATUS: status.upper()})
        self._terminate(parent_id, mlflow_status)

    # ------------------------------------------------------------------------ trials

    def start_trial(self, trial_id: str, *, config: Mapping[str, Any],
                    tags: Mapping[str, str]) -> str:
        """Opens the trial's child run, or reopens it when the trial resumes or is retried.

        Params are logged once (MLflow refuses to change a param); tags are set every time, and
        an error left by an earlier attempt is removed.

        Args:
            trial_id: The trial's id: the run name and the tag that finds the run again.
            config: The trial's flat dotted config, as ``mixup_core.config.to_flat`` gives it.
            tags: Extra tags: git commit, versions, node...

        Returns:
            The child run id.

        Raises:
            ValueError: A param would change value, or the config JSON exceeds MLflow's tag limit.
        """
        all_tags, params = self._trial_tags_and_params(trial_id, config, tags)
        run = self._find_one(self._filter("child", trial_id))
        if run is None:
            run_id = self._create_run(run_name(config, self.name_keys) or trial_id, all_tags)
            self._log_batch(run_id, params=params)
            self._last_step[run_id] = None
        else:
            run_id = run.info.run_id
            self._log_batch(run_id, params=_unlogged(run, params), tags=all_tags)
            if run.info.status != "RUNNING":
                self._reopen(run_id)
            if TAG_ERROR in run.data.tags:
                self._delete_tag(run_id, TAG_ERROR)
            if run_id not in self._last_step:
                self._last_step[run_id] = self._last_logged_step(run)
        self._runs[trial_id] = run_id
        return run_id

    def _trial_tags_and_params(self, trial_id: str, config: Mapping[str, Any],
                               tags: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        parent_id = self._require_parent()
        flat = dict(config)
        config_json = json.dumps(flat)
        if len(config_json) > _MAX_TAG_CHARS:
            raise ValueError(f"trial {trial_id}: config JSON has {len(config_json)} characters; "
                             f"MLflow keeps at most {_MAX_TAG_CHARS} in a tag")
        about = answer.trial_about(flat, self.name_keys, *_merged(tags))
        self._about[trial_id] = (about, _seed_count(tags, self.extra_params))
        all_tags = {**_strings(tags), TAG_SWEEP: self.sweep_name, TAG_ROLE: "child",
                    TAG_TRIAL: trial_id, TAG_STATUS: "RUNNING", TAG_CONFIG: config_json,
                    TAG_PARENT: parent_id, NOTE: about, **self._id_tag()}
        if not self.name_keys:
            if self.param_keys is not None:
                flat = {k: v for k, v in flat.items() if k in self.param_keys}
            return all_tags, {**_params(flat), **self.extra_params}
        self._log_base(parent_id, flat)
        return all_tags, {k: v for k, v in _params(flat).items()
                          if k in self.name_keys or self._parent_params.get(k, v) != v}

    def _log_base(self, parent_id: str, config: Mapping[str, Any]) -> None:
        """Logs on the parent run, once, the config keys every trial shares (all but the
        searched ones and ``seed``: a trial averages the sweep's seeds) and the sweep-wide
        params. A key the parent already has keeps its value."""
        if self._base_logged:
            return
        base = {**_params({k: v for k, v in config.items()
                           if k not in self.name_keys and k != "seed"}), **self.extra_params}
        new = {k: v for k, v in base.items() if k not in self._parent_params}
        self._log_batch(parent_id, params=new)
        self._parent_params |= new
        self._base_logged = True

    def write_trial(self, trial_id: str, *,
                    start: tuple[Mapping[str, Any], Mapping[str, str], bool] | None = None,
                    epochs: Sequence[tuple[int, Mapping[str, float]]] = (),
                    tags: Mapping[str, str] | None = None,
                    finish: tuple[str, Mapping[str, float], str | None] | None = None) -> None:
        """Everything the driver has for one trial since its last write, in as few requests
        as MLflow's limits allow: a trial that starts, reports and ends between two writes
        costs ``create_run``, one ``log_batch`` and ``set_terminated``.

        Args:
            start: (config, tags, new) as :meth:`start_trial` takes them; ``new`` says the
                trial has no run yet (its record did not exist), so no search is needed.
            epochs: (epoch, metrics) reports, as :meth:`log_epoch` takes them.
            tags: Tags to set, e.g. the node id.
            finish: (status, summary, error) as :meth:`finish_trial` takes them.
        """
        self._apply(self._plan(TrialWrite(trial_id, start, epochs, tags or {}, finish)))

    def write_trials(self, writes: Sequence[TrialWrite]) -> dict[str, Exception]:
        """Several trials' writes, as :meth:`write_trial` takes each.

        A sqlite store gets them all in one transaction (:class:`SqliteBatch`, through MLflow's
        own SQLAlchemy models) if :attr:`batched`: MLflow's API writes one run per request, 7
        commits and ~60 ms a trial. Other stores, and a sqlite store at a schema revision the
        bulk writer was not tested against, get :meth:`write_trial`'s requests, trial by trial.

        Returns:
            The trials whose writes failed, with why. In a sqlite store a failed transaction
            writes nothing, so every trial of the batch is in it.
        """
        failed: dict[str, Exception] = {}
        plans = []
        for write in writes:
            try:
                plans.append(self._plan(write))
            except Exception as err:
                failed[write.trial_id] = err
        if plans and self.batched:
            try:
                self._sqlite_batch.write(plans, self.ensure_experiment())
            except Exception as err:
                failed.update({plan.trial_id: err for plan in plans})
            else:
                for plan in plans:
                    self._runs[plan.trial_id] = str(plan.run_id)
                    self._last_step[str(plan.run_id)] = plan.last
            return failed
        for plan in plans:
            try:
                self._apply(plan)
            except Exception as err:
                failed[plan.trial_id] = err
        return failed

    def _plan(self, write: TrialWrite) -> TrialPlan:
        """What ``write`` asks of the store; a resumed trial's run is reattached here (its
        search and reopening are requests), a new one is created by :meth:`_apply`."""
        trial_id = write.trial_id
        create: tuple[str, dict[str, str]] | None = None
        params: dict[str, str] = {}
        if write.start is not None:
            config, start_tags, new = write.start
            if new:
                all_tags, params = self._trial_tags_and_params(trial_id, config, start_tags)
                create = (run_name(config, self.name_keys) or trial_id, all_tags)
            else:
                self.start_trial(trial_id, config=config, tags=start_tags)
        run_id = None if create is not None else self._attached(trial_id)
        last = None if run_id is None else self._last_step.get(run_id)
        rows = []
        for epoch, metrics in sorted(write.epochs, key=lambda row: row[0]):
            reserved = sorted(k for k in metrics if k.startswith(SUMMARY_PREFIXES))
            if reserved:
                raise ValueError(f"trial {trial_id}: epoch metric {reserved[0]!r}: the prefixes "
                                 f"{' and '.join(SUMMARY_PREFIXES)} are reserved for the summary")
            if last is None or epoch > last:
                rows.append((epoch, _finite(metrics)))
                last = epoch
        tags = _strings(write.tags)
        mlflow_status = None
        if write.finish is not None:
            status, summary, error = write.finish
            mlflow_status = _mlflow_status(status)
            tags |= self._finish_tags(trial_id, status, summary, error)
            rows.append((0, _finite(summary)))
        return TrialPlan(trial_id, run_id, create, params, rows, tags, mlflow_status, last)

    def _apply(self, plan: TrialPlan) -> None:
        """``plan`` through MLflow's API: create_run, log_batch (as few as its limits allow),
        set_terminated."""
        run_id = plan.run_id
        if plan.create is not None:
            run_id = self._create_run(*plan.create)
            self._runs[plan.trial_id], self._last_step[run_id] = run_id, None
        assert run_id is not None
        self._log_rows(run_id, plan.rows, params=plan.params, tags=plan.tags)
        self._last_step[run_id] = plan.last
        if plan.mlflow_status is not None:
            self._terminate(run_id, plan.mlflow_status)

    def log_epoch(self, trial_id: str, epoch: int, metrics: Mapping[str, float]) -> None:
        """Logs one epoch's metrics at step ``epoch`` in one request.

        An epoch at or before the last one logged for the run is ignored, so a trial resumed
        from a checkpoint can re-report epochs without duplicating them. Values that are not
        finite numbers are skipped.

        Raises:
            ValueError: A key starts with ``best/`` or ``last/`` (reserved for the summary), or
                the trial has no run in this sweep.
        """
        reserved = sorted(k for k in metrics if k.startswith(SUMMARY_PREFIXES))
        if reserved:
            raise ValueError(f"trial {trial_id}: epoch metric {reserved[0]!r}: the prefixes "
                             f"{' and '.join(SUMMARY_PREFIXES)} are reserved for the summary")
        run_id = self._attached(trial_id)
        last = self._last_step.get(run_id)
        if last is not None and epoch <= last:
            return
        self._log_batch(run_id, metrics=_finite(metrics), step=epoch)
        self._last_step[run_id] = epoch

    def sweep_run_ids(self, parent_run_id: str | None = None) -> list[str]:
        """The sweep's parent run and its children: by the parent run's id when it is known
        (two sweeps of one name never mix), else by the sweep's name tag."""
        if self._client.get_experiment_by_name(self.experiment_name) is None:
            return []
        if self.sweep_id:
            runs = self._search(f"tags.`{TAG_SWEEP_ID}` = {_quoted(self.sweep_id)}")
            return [run.info.run_id for run in runs]
        if parent_run_id is None:
            runs = self._search(f"tags.`{TAG_SWEEP}` = {_quoted(self.sweep_name)}")
            return [run.info.run_id for run in runs]
        parent = self._get_run(parent_run_id)
        children = self._search(f"tags.`{TAG_PARENT}` = {_quoted(parent_run_id)}")
        return ([parent_run_id] if parent is not None else []) + [r.info.run_id for r in children]

    def other_sweeps_parents(self) -> list[str]:
        """Active parent runs of a sweep of this name that is not this one (another folder's)."""
        if self._find_experiment() is None:
            return []
        parents = self._search(f"tags.`{TAG_SWEEP}` = {_quoted(self.sweep_name)} and "
                               f"tags.`{TAG_ROLE}` = 'parent'")
        return [r.info.run_id for r in parents
                if not self.sweep_id or r.data.tags.get(TAG_SWEEP_ID) != self.sweep_id]

    def delete_runs(self, run_ids: Sequence[str]) -> list[str]:
        """Soft-deletes the runs (``mlflow gc`` purges them); returns those it deleted. A failure
        part-way restores the ones already deleted before it is raised again."""
        done: list[str] = []
        try:
            for run_id in run_ids:
                self._client.delete_run(run_id)
                done.append(run_id)
        except BaseException:
            self.restore_runs(done)
            raise
        return done

    def restore_runs(self, run_ids: Sequence[str]) -> None:
        """Undoes :meth:`delete_runs` (MLflow's restore of soft-deleted runs)."""
        for run_id in run_ids:
            self._client.restore_run(run_id)

    def ended_trials(self) -> set[str]:
        """The trials whose child run has ended (not RUNNING): a driver that ended them had
        written everything of theirs before (their end is the last thing written)."""
        return {run.data.tags.get(TAG_TRIAL, "") for run in self._search(self._filter("child"))
                if run.info.status != "RUNNING"}

    def set_tags(self, trial_id: str, tags: Mapping[str, str]) -> None:
        """Sets tags on the trial's run, e.g. ``mixup_sweeps.node_id`` once it is known."""
        self._log_batch(self._attached(trial_id), tags=_strings(tags))

    def finish_trial(self, trial_id: str, *, status: str, summary: Mapping[str, float],
                     error: str | None = None) -> None:
        """Logs the summary metrics (no step), the status and error tags, and ends the run.

        Args:
            trial_id: The trial.
            status: ``TERMINATED`` or ``STOPPED`` (run FINISHED), ``ERROR`` (FAILED), ``KILLED``.
            summary: e.g. ``best/test/acc_rare``, ``last/test/acc_rare``, ``best_epoch``.
            error: Why the trial failed; the first ``MAX_ERROR_CHARS`` characters are kept.
        """
        mlflow_status = _mlflow_status(status)
        run_id = self._attached(trial_id)
        tags = self._finish_tags(trial_id, status, summary, error)
        self._log_batch(run_id, metrics=_finite(summary), tags=tags)
        self._terminate(run_id, mlflow_status)

    def _finish_tags(self, trial_id: str, status: str, summary: Mapping[str, float],
                     error: str | None) -> dict[str, str]:
        """The status and error tags of an ending trial, and its description: what it stands
        for (as its start wrote it) and the epoch chosen on the objective, with the values."""
        tags = {TAG_STATUS: status.upper(), TAG_SUMMARY_KEYS: json.dumps(sorted(summary))}
        if error is not None:
            tags[TAG_ERROR] = error[:MAX_ERROR_CHARS]
        if trial_id in self._about:
            about, seeds = self._about[trial_id]
            metric = self._objective[0] if self._objective else None
            ended = answer.chosen_note(_finite(summary), status=status, metric=metric,
                                       seeds=seeds)
            tags[NOTE] = f"{about}\n\n{ended}"[:_MAX_TAG_CHARS]
        return tags

    # ------------------------------------------------------------------------ reading back

    def read_sweep(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The sweep as recorded in MLflow, in the schema of the Parquet tables.

        Returns:
            ``(trials, epochs)``. trials: ``trial_id``, ``status``, ``node_id``, ``error``
            (None where absent), ``config/<dotted key>`` with the config's own types (None
            stays None), then the summary metrics. epochs: ``trial_id``, ``epoch`` (int) and
            one column per epoch metric (NaN where not logged). Rows sorted by trial, epoch.
        """
        experiment_id = self._experiment_id or self._find_experiment()
        runs = self._search(self._filter("child"), experiment_id) if experiment_id else []
        runs.sort(key=lambda r: r.data.tags[TAG_TRIAL])
        trials, epochs = [], []
        for run in runs:
            tags, trial_id = run.data.tags, run.data.tags[TAG_TRIAL]
            config = json.loads(tags.get(TAG_CONFIG, "{}"))
            summary_keys = _summary_keys(run)
            trials.append({
                "trial_id": trial_id, "status": tags.get(TAG_STATUS),
                "node_id": tags.get(TAG_NODE), "error": tags.get(TAG_ERROR),
                **{f"{CONFIG_PREFIX}{k}": v for k, v in config.items()},
                **{k: v for k, v in run.data.metrics.items() if k in summary_keys},
            })
            by_epoch: dict[int, dict[str, float]] = {}
            for key in sorted(set(run.data.metrics) - summary_keys - {"epoch"}):
                for m in sorted(self._history(run.info.run_id, key), key=lambda m: m.timestamp):
                    by_epoch.setdefault(m.step, {})[key] = m.value
            epochs += [{"trial_id": trial_id, "epoch": e, **by_epoch[e]} for e in sorted(by_epoch)]
        return (_table(trials, ("trial_id", "status", "node_id", "error"), exact=CONFIG_PREFIX),
                _table(epochs, ("trial_id", "epoch")))

    # ------------------------------------------------------------------------ bookkeeping

    def _require_parent(self) -> str:
        if self._parent_id is None:
            raise RuntimeError(f"sweep {self.sweep_name!r}: call start_sweep first")
        return self._parent_id

    def _id_tag(self) -> dict[str, str]:
        return {TAG_SWEEP_ID: self.sweep_id} if self.sweep_id else {}

    def _filter(self, role: str, trial_id: str | None = None) -> str:
        wanted = {TAG_SWEEP: self.sweep_name, TAG_ROLE: role, **self._id_tag()}
        if trial_id is not None:
            wanted[TAG_TRIAL] = trial_id
        return " and ".join(f"tags.`{k}` = {_quoted(v)}" for k, v in wanted.items())

    def _given_parent(self, run_id: str) -> Run | None:
        run = self._get_run(run_id)
        if run is None or run.info.lifecycle_stage != "active":
            return None
        tags = run.data.tags
        if (tags.get(TAG_SWEEP) != self.sweep_name or tags.get(TAG_ROLE) != "parent"
                or (self.sweep_id and tags.get(TAG_SWEEP_ID, self.sweep_id) != self.sweep_id)):
            raise ValueError(f"run {run_id} is not the parent run of sweep {self.sweep_name!r}")
        return run

    def _attached(self, trial_id: str) -> str:
        """The trial's run id, found by its tags if this tracker did not start it."""
        run_id = self._runs.get(trial_id)
        if run_id is None:
            run = self._find_one(self._filter("child", trial_id))
            if run is None:
                raise ValueError(f"trial {trial_id!r} has no run in sweep {self.sweep_name!r}; "
                                 "call start_trial first")
            run_id = self._runs[trial_id] = run.info.run_id
            self._last_step[run_id] = self._last_logged_step(run)
        return run_id

    def _last_logged_step(self, run: Run) -> int | None:
        """The highest step of the run's epoch metrics: what a resumed trial must not repeat."""
        keys = sorted(set(run.data.metrics) - _summary_keys(run))
        # "epoch" is in every report the driver logs, so its history alone is enough.
        for key in ["epoch"] if "epoch" in keys else keys:
            steps = [m.step for m in self._history(run.info.run_id, key)]
            if steps:
                return max(steps)
        return None

    def _find_one(self, filter_string: str) -> Run | None:
        runs = self._search(filter_string)
        return runs[0] if runs else None  # the earliest, should a crash have left two

    # ------------------------------------------------------------------------ requests

    @property
    def _sqlite_batch(self) -> SqliteBatch:
        if self._batch is None:
            experiment = self._client.get_experiment(self.ensure_experiment())
            self._batch = SqliteBatch(self.tracking_uri, experiment.artifact_location)
        return self._batch

    @property
    def _client(self) -> MlflowClient:
        if self._mlflow is None:
            from mlflow.tracking import MlflowClient

            seed_store(self.tracking_uri)  # a new sqlite store: copied, not migrated (~0.9 s)
            self._mlflow = MlflowClient(tracking_uri=self.tracking_uri)
        return self._mlflow

    def _find_experiment(self) -> str | None:
        experiment = self._client.get_experiment_by_name(self.experiment_name)
        if experiment is None:
            return None
        if experiment.lifecycle_stage != "active":
            raise TrackingUnavailable(
                f"experiment {self.experiment_name!r} in {self.tracking_uri} was deleted; restore "
                "it (mlflow experiments restore) or choose another experiment name")
        return str(experiment.experiment_id)

    def _create_experiment(self) -> str:
        from mlflow.exceptions import MlflowException

        try:
            return str(self._client.create_experiment(
                self.experiment_name, artifact_location=artifact_home(self.tracking_uri,
                                                                      self.sweep_name),
                tags={EXPERIMENT_KIND: CLASSIC_KIND}))
        except MlflowException as err:  # another driver created it since we looked
            found = self._find_experiment()
            if err.error_code != "RESOURCE_ALREADY_EXISTS" or found is None:
                raise
            return found

    def _get_run(self, run_id: str) -> Run | None:
        from mlflow.exceptions import MlflowException

        try:
            return self._client.get_run(run_id)
        except MlflowException as err:
            if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def _search(self, filter_string: str, experiment_id: str | None = None) -> list[Run]:
        experiment_ids = [experiment_id or self.ensure_experiment()]
        runs: list[Run] = []
        token: str | None = None
        while True:
            page = self._client.search_runs(experiment_ids, filter_string, max_results=1000,
                                            order_by=["attributes.start_time ASC"],
                                            page_token=token)
            runs += page
            token = page.token
            if not token:
                return runs

    def _create_run(self, run_name: str, tags: Mapping[str, str]) -> str:
        run = self._client.create_run(self.ensure_experiment(), tags=dict(tags), run_name=run_name)
        return str(run.info.run_id)

    def _log_batch(self, run_id: str, *, metrics: Mapping[str, float] | None = None,
                   step: int = 0, params: Mapping[str, str] | None = None,
                   tags: Mapping[str, str] | None = None) -> None:
        """One request, or a few should MLflow's per-request limits demand it; none if empty."""
        self._log_rows(run_id, [(step, metrics or {})], params=params, tags=tags)

    def _log_rows(self, run_id: str, rows: Sequence[tuple[int, Mapping[str, float]]], *,
                  params: Mapping[str, str] | None = None,
                  tags: Mapping[str, str] | None = None) -> None:
        """Metrics at several steps, params and tags in as few requests as MLflow allows."""
        from mlflow.entities import Metric, Param, RunTag

        stamp = int(time.time() * 1000)
        metric_list = [Metric(k, v, stamp, step) for step, metrics in rows
                       for k, v in metrics.items()]
        param_list = [Param(k, v) for k, v in (params or {}).items()]
        tag_list = [RunTag(k, v) for k, v in (tags or {}).items()]
        while metric_list or param_list or tag_list:
            some_params = param_list[:_MAX_PARAMS_OR_TAGS_PER_BATCH]
            some_tags = tag_list[:_MAX_PARAMS_OR_TAGS_PER_BATCH]
            room = _MAX_ENTITIES_PER_BATCH - len(some_params) - len(some_tags)
            self._client.log_batch(run_id, metrics=metric_list[:room], params=some_params,
                                   tags=some_tags)
            metric_list, param_list = metric_list[room:], param_list[len(some_params):]
            tag_list = tag_list[len(some_tags):]

    def _reopen(self, run_id: str) -> None:
        self._client.update_run(run_id, status="RUNNING")

    def _terminate(self, run_id: str, mlflow_status: str) -> None:
        self._client.set_terminated(run_id, status=mlflow_status)

    def _delete_tag(self, run_id: str, key: str) -> None:
        self._client.delete_tag(run_id, key)

    def _history(self, run_id: str, key: str) -> list[Metric]:
        return list(self._client.get_metric_history(run_id, key))


# ---------------------------------------------------------------------------- helpers


def _is_sqlite(uri: str) -> bool:
    return uri.startswith("sqlite:")


@contextlib.contextmanager
def _creating_sqlite_store(uri: str) -> Iterator[None]:
    """Within: this process alone may create the sqlite store's file and schema.

    MLflow migrates a fresh store's schema when it first opens it; two drivers doing so at once
    race (one fails in Alembic). An exclusive lock on ``<store>.lock`` beside the file makes the
    second wait for the first; once the store exists the lock is not taken at all.
    """
    path = Path(uri[len("sqlite:///"):].partition("?")[0]) if uri.startswith("sqlite:///") \
        else None
    if path is None or path.is_file() or not path.parent.is_dir():
        yield
        return
    import fcntl

    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


@contextlib.contextmanager
def bounded_http(timeout_s: float, *, keep_user_settings: bool = False) -> Iterator[None]:
    """Within: MLflow's HTTP requests get no retries and a ``timeout_s`` timeout, so a down
    server costs seconds, not MLflow's minutes of backoff. Restored on exit.

    MLflow reads these variables on every request; they are process-wide while set.
    ``keep_user_settings`` leaves values the user exported in place (the sweep driver's case).
    """
    limits = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
              "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(timeout_s))}
    saved = {name: os.environ.get(name) for name in limits}
    for name, limit in limits.items():
        if not (keep_user_settings and saved[name] is not None):
            os.environ[name] = limit
    try:
        yield
    finally:
        for name, before in saved.items():
            if before is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = before


def log_artifacts(tracking_uri: str, run_id: str, files: Sequence[Path], *,
                  artifact_path: str, timeout_s: float = 10) -> None:
    """Logs ``files`` (only those) as artifacts of run ``run_id`` under ``artifact_path``.

    Raises:
        TrackingUnavailable: The store does not exist or cannot be reached, or the run is
            missing; one line naming the cause.
    """
    if tracking_uri.startswith("sqlite:///"):
        store = Path(tracking_uri[len("sqlite:///"):])
        if not store.is_file():  # MlflowClient would create an empty store here
            raise TrackingUnavailable(f"tracking store {tracking_uri} does not exist")
        rebase_artifacts(tracking_uri)
    try:
        from mlflow.tracking import MlflowClient

        with bounded_http(timeout_s), tempfile.TemporaryDirectory(prefix="mixup-art-") as staging:
            for path in files:
                shutil.copyfile(path, Path(staging) / path.name)
            client = MlflowClient(tracking_uri)
            client.get_run(run_id)
            client.log_artifacts(run_id, staging, artifact_path=artifact_path)
    except Exception as err:  # any failure means "not logged"; say why on one line
        cause = " ".join(str(err).split())[:200] or type(err).__name__
        raise TrackingUnavailable(f"{tracking_uri}, run {run_id}: {cause}") from err


ARTIFACTS_DIR = "mlartifacts"


def artifact_home(tracking_uri: str, sweep_name: str) -> str | None:
    """Where a new experiment keeps its artifacts: for a sqlite store, ``mlartifacts/<sweep>``
    beside the store file (MLflow's default is ``./mlruns`` under whatever folder the first
    command ran in); for a server, wherever the server says (None)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    store = Path(tracking_uri[len("sqlite:///"):].partition("?")[0])
    return str(store.parent / ARTIFACTS_DIR / sweep_name)


def rebase_artifacts(tracking_uri: str) -> int:
    """Points the artifact locations of this sqlite store's sweeps at ``mlartifacts/`` beside
    the store, where a copied or moved store (with its ``mlartifacts`` folder) has them.

    MLflow records absolute locations, so without this a copy of ``mlflow.db`` reads, and
    writes, the original's artifacts. Only experiments named ``mixup-sweeps/...`` whose
    location is a ``.../mlartifacts/...`` path elsewhere are changed, with their runs.

    Returns:
        How many experiments were rebased.
    """
    import sqlite3

    if not tracking_uri.startswith("sqlite:///"):
        return 0
    store = Path(tracking_uri[len("sqlite:///"):].partition("?")[0])
    if not store.is_file():
        return 0
    home = str(store.parent / ARTIFACTS_DIR)
    marker = f"/{ARTIFACTS_DIR}/"
    changed = 0
    with contextlib.closing(sqlite3.connect(store, timeout=30)) as db, db:
        try:
            rows = db.execute("SELECT experiment_id, artifact_location FROM experiments "
                              "WHERE name LIKE 'mixup-sweeps/%'").fetchall()
        except sqlite3.OperationalError:  # not (yet) an MLflow store
            return 0
        for experiment_id, location in rows:
            path = str(location or "").removeprefix("file://")
            if marker not in path or path.startswith(home + "/"):
                continue
            new = home + "/" + path.split(marker, 1)[1]
            db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                       (new, experiment_id))
            db.execute("UPDATE runs SET artifact_uri = ? || substr(artifact_uri, ?) "
                       "WHERE experiment_id = ? AND substr(artifact_uri, 1, ?) = ?",
                       (new, len(location) + 1, experiment_id, len(location), location))
            changed += 1
    return changed


def absolute_uri(uri: str, cwd: Path) -> str:
    """A sqlite URI with a relative path (``sqlite:///dir/x.db``) made absolute against ``cwd``,
    so that every later command opens the same file wherever it runs; other URIs as given."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri.startswith(prefix + "/"):
        return uri
    path, sep, query = uri[len(prefix):].partition("?")
    if path in ("", ":memory:"):
        return uri
    return f"{prefix}{(Path(cwd) / path).resolve()}{sep}{query}"


_HTTP_HINTS = {
    "401": ": not authenticated; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD",
    "403": ": permission denied; the experiment belongs to another user (pick another sweep "
           "name, or have its owner grant you EDIT)",
    "404": ": not an MLflow tracking server?",
}


def tracking_unusable(uri: str, err: BaseException) -> TrackingUnavailable:
    cause, network = _cause(err)
    if not _is_http(uri):
        return TrackingUnavailable(f"tracking store {uri} is not usable ({cause}); "
                                   "fix it or pass --tracking-uri")
    if cause.startswith(("HTTP 401", "HTTP 403")):
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        who = f" as user {user!r}" if user and cause.startswith("HTTP 403") else ""
        return TrackingUnavailable(f"tracking server {uri} refused the request{who} ({cause})")
    state = "unreachable" if network else "not usable"
    return TrackingUnavailable(f"tracking server {uri} is {state} ({cause}); "
                               "start it or pass --tracking-uri")


def _cause(err: BaseException) -> tuple[str, bool]:
    """A short reason for ``err``, and whether the network (rather than the server) failed."""
    chain: list[BaseException] = []
    link: BaseException | None = err
    while link is not None and len(chain) < 20:
        chain.append(link)
        link = link.__cause__ or link.__context__
    for link in chain:
        if isinstance(link, ConnectionRefusedError):
            return "connection refused", True
        if isinstance(link, socket.gaierror):
            return "host name not found", True
        if isinstance(link, TimeoutError):
            return f"no answer within {CHECK_TIMEOUT_S} s", True
    text = " ".join(str(err).split())  # one line
    code = re.search(r"error code (\d{3})", text)
    if code:
        return f"HTTP {code.group(1)}{_HTTP_HINTS.get(code.group(1), '')}", False
    root = chain[-1]
    if isinstance(root, OSError) and root.strerror:
        return root.strerror.lower(), True
    first_sentence = text.split(". ")[0][:300]
    return first_sentence or type(err).__name__, False


def _quoted(value: str) -> str:
    """``value`` as a string literal of an MLflow search filter."""
    if not value or any(c in value for c in "'\"\\`\n"):
        raise ValueError(f"{value!r}: sweep names and trial ids must be non-empty, without "
                         "quotes, backslashes or newlines")
    return f"'{value}'"


def _strings(tags: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in tags.items()}


#: The experiment tag MLflow's UI reads to pick its view: a sweep is "custom model development"
#: (the classic runs table), not GenAI (traces, an assistant panel, runs as "Evaluations").
EXPERIMENT_KIND = "mlflow.experimentKind"
CLASSIC_KIND = "custom_model_development"


def _merged(tags: Mapping[str, str]) -> tuple[list[dict[str, Any]], int | None]:
    """The grid points merged into a trial and how many it stands for, from the tags the
    driver gives it (``mixup_sweeps.merged``, cut at 4,000 characters; ``stands_for``)."""
    try:
        points = json.loads(tags.get("mixup_sweeps.merged", "[]"))
    except json.JSONDecodeError:  # cut short: the count still says how many
        points = []
    try:
        count = int(tags.get("mixup_sweeps.stands_for", ""))
    except ValueError:
        count = None
    return [p for p in points if isinstance(p, dict)] if isinstance(points, list) else [], count


def _seed_count(tags: Mapping[str, str], extra_params: Mapping[str, str]) -> int:
    """How many seeds a trial's values are means over (``mixup_sweeps.seeds``, or the
    ``seeds`` param); 0 when unknown."""
    for text in (tags.get("mixup_sweeps.seeds"), extra_params.get("seeds")):
        try:
            seeds = json.loads(text or "")
        except json.JSONDecodeError:
            continue
        if isinstance(seeds, list):
            return len(seeds)
    return 0


def _params(values: Mapping[str, Any]) -> dict[str, str]:
    """Values as ``str()`` gives them, cut to what MLflow keeps."""
    return {str(k): str(v)[:_MAX_PARAM_CHARS] for k, v in values.items()}


def _unlogged(run: Run, params: Mapping[str, str]) -> dict[str, str]:
    """The params the run does not have yet; MLflow refuses a new value for a logged one."""
    logged = run.data.params
    for key, value in params.items():
        if key in logged and logged[key] != value:
            raise ValueError(f"run {run.info.run_id}: param {key} was logged as {logged[key]!r}, "
                             f"now {value!r}; a resumed sweep or trial must keep its config")
    return {k: v for k, v in params.items() if k not in logged}


def _summary_keys(run: Run) -> set[str]:
    listed = json.loads(run.data.tags.get(TAG_SUMMARY_KEYS, "[]"))
    return {k for k in run.data.metrics if k in listed or k.startswith(SUMMARY_PREFIXES)}


def _finite(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[key] = number
    return out


def _mlflow_status(status: str) -> str:
    try:
        return RUN_STATUS[status.upper()]
    except KeyError:
        raise ValueError(f"status {status!r}: expected one of {', '.join(RUN_STATUS)}") from None


def _table(rows: list[dict[str, Any]], leading: tuple[str, ...], *,
           exact: str | None = None) -> pd.DataFrame:
    """A frame with ``leading`` columns first; they and columns starting with ``exact`` keep
    None as None (pandas would make ``[1, None]`` into ``[1.0, nan]``, ``[None, "x"]`` into
    ``[nan, "x"]``); other columns (metrics) get NaN where a row lacks them.
    """
    import pandas as pd

    columns = [*leading, *(c for c in dict.fromkeys(k for r in rows for k in r) if c not in leading)]
    frame = pd.DataFrame(rows, columns=columns)
    for column in columns:
        values = [r.get(column) for r in rows]
        keep = column in leading or (exact is not None and column.startswith(exact))
        if keep and any(v is None for v in values):
            frame[column] = pd.Series(values, dtype=object, index=frame.index)
    return frame
