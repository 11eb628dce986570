"""The bulk writer: a writer pass's trials into a sqlite MLflow store in one transaction.

The one module of the project that touches MLflow's own tables
(``mlflow.store.tracking.dbmodels``) and a private validator of MLflow's
(``mlflow.utils.validation._validate_batch_log_data``). It is written against MLflow
:data:`TESTED_MLFLOW` and the schema revisions in :data:`TESTED_REVISIONS`;
:meth:`SqliteBatch.usable` reads the store's alembic revision (the ``alembic_version`` table
MLflow's migrations keep) and the tracker decides once, per tracker, to fall back to MLflow's
API on any other revision or MLflow release. Everything else in the project reaches MLflow
through its public client.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The alembic revisions of MLflow's schema this writer was tested against: what a store
#: created or upgraded by MLflow 3.17.2 records (its migrations' head).
TESTED_REVISIONS = frozenset({"dc11669786a5"})
#: The MLflow release (major.minor) whose SQLAlchemy models and validator it uses.
TESTED_MLFLOW = "3.17"


@dataclass
class TrialPlan:
    """A trial's writes as the store takes them: a run to create (name, tags) or its id, the
    new params, metric rows (step, metrics), tags to set, the status it ends with."""

    trial_id: str
    run_id: str | None
    create: tuple[str, dict[str, str]] | None
    params: dict[str, str]
    rows: list[tuple[int, dict[str, float]]]
    tags: dict[str, str]
    mlflow_status: str | None
    last: int | None


class SqliteBatch:
    """Writes many trials' plans into a sqlite store in one transaction.

    MLflow has no request that spans runs, and through its store a trial costs ~60 ms (create,
    log_batch, terminate: 7 commits, most of it SQLAlchemy's unit of work). This writes the same
    rows with MLflow's own SQLAlchemy tables and session maker (its sqlite pragmas, its error
    mapping), as MLflow's ``SqlAlchemyStore`` would: run rows as ``create_run`` makes them,
    params, tags (set again: the new value wins), metrics (a repeated one is skipped, as MLflow
    skips it), ``latest_metrics`` by MLflow's rule (the greatest step, then timestamp, then
    value), status and end time as ``set_terminated`` sets them; entities are checked with
    MLflow's own validation first. ``tests/tracking/test_tracking.py`` compares everything MlflowClient
    reads back against the same writes made through MLflow's API.
    """

    @staticmethod
    def usable(tracking_uri: str) -> bool:
        """Whether this writer may write the store: a sqlite store at a schema revision in
        :data:`TESTED_REVISIONS`, with MLflow :data:`TESTED_MLFLOW` installed. One cheap query;
        any other store is written through MLflow's API."""
        import mlflow

        release = ".".join(mlflow.__version__.split(".")[:2])
        return release == TESTED_MLFLOW and store_revision(tracking_uri) in TESTED_REVISIONS

    def __init__(self, tracking_uri: str, artifact_location: str) -> None:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        self.store = SqlAlchemyStore(tracking_uri, artifact_location)

    def write(self, plans: Sequence[TrialPlan], experiment_id: str) -> None:
        """Writes every plan or none; gives each new run its id (``plan.run_id``).

        Raises:
            MlflowException: As MLflow raises it: a run or the experiment missing or deleted, an
                invalid entity, the database locked past MLflow's busy timeout.
        """
        import uuid

        from mlflow.entities import LifecycleStage, Metric, Param, RunStatus, RunTag, SourceType
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
        from mlflow.store.tracking.dbmodels.models import (
            SqlExperiment,
            SqlLatestMetric,
            SqlMetric,
            SqlParam,
            SqlRun,
            SqlTag,
        )
        from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME, MLFLOW_USER
        from mlflow.utils.uri import append_to_uri_path
        from mlflow.utils.validation import _validate_batch_log_data
        from sqlalchemy import bindparam, select, update
        from sqlalchemy.dialects.sqlite import insert

        now = int(time.time() * 1000)
        with self.store.ManagedSessionMaker(read_only=False) as session:
            experiment = session.get(SqlExperiment, int(experiment_id))
            if experiment is None or experiment.lifecycle_stage != LifecycleStage.ACTIVE:
                raise MlflowException(f"experiment {experiment_id} is missing or not active",
                                      INVALID_PARAMETER_VALUE)
            runs: list[dict[str, Any]] = []
            params: list[dict[str, Any]] = []
            ends: list[dict[str, Any]] = []
            tags: dict[tuple[str, str], str] = {}  # (run, key) -> value: the last one wins
            # (run, (key, timestamp, step, value, is_nan)), in order, each once (MLflow's dedup)
            metrics: dict[tuple[str, tuple[str, int, int, float, bool]], None] = {}
            for plan in plans:
                run_tags = {} if plan.create is None else dict(plan.create[1])
                if plan.create is not None:
                    plan.run_id = uuid.uuid4().hex
                    name = plan.create[0]
                    runs.append({
                        "run_uuid": plan.run_id, "name": name,
                        "source_type": SourceType.to_string(SourceType.UNKNOWN),
                        "source_name": "", "entry_point_name": "",
                        "user_id": run_tags.get(MLFLOW_USER, "unknown"),
                        "status": RunStatus.to_string(RunStatus.RUNNING),
                        "start_time": now, "end_time": None, "deleted_time": None,
                        "source_version": "", "lifecycle_stage": LifecycleStage.ACTIVE,
                        "artifact_uri": append_to_uri_path(experiment.artifact_location,
                                                           plan.run_id, "artifacts"),
                        "experiment_id": int(experiment_id)})
                    run_tags.setdefault(MLFLOW_RUN_NAME, name)
                elif MLFLOW_RUN_NAME in plan.tags:
                    raise ValueError(f"trial {plan.trial_id}: the run name is set when the run "
                                     "is created")
                run_id = str(plan.run_id)
                run_tags |= plan.tags
                metric_list, param_list, tag_list = _validate_batch_log_data(
                    [Metric(k, v, now, step) for step, row in plan.rows for k, v in row.items()],
                    [Param(k, v) for k, v in plan.params.items()],
                    [RunTag(k, v) for k, v in run_tags.items()])
                params += [{"run_uuid": run_id, "key": p.key, "value": p.value}
                           for p in param_list]
                tags |= {(run_id, t.key): t.value for t in tag_list}
                for metric in metric_list:
                    is_nan, value = self.store.sanitize_metric_value(metric.value)
                    metrics[(run_id, (metric.key, metric.timestamp, metric.step, value,
                                      is_nan))] = None
                if plan.mlflow_status is not None:
                    ends.append({"rid": run_id, "st": plan.mlflow_status, "et": now})

            old = sorted(str(p.run_id) for p in plans if p.create is None)
            latest: dict[tuple[str, str], tuple[int, int, float, bool]] = {}
            for chunk in _chunks(old, 500):
                stages = dict(session.execute(select(SqlRun.run_uuid, SqlRun.lifecycle_stage)
                                              .where(SqlRun.run_uuid.in_(chunk))).all())
                for run_id in chunk:
                    if stages.get(run_id) != LifecycleStage.ACTIVE:
                        raise MlflowException(f"run {run_id} is missing or not active",
                                              INVALID_PARAMETER_VALUE)
                for row in session.execute(select(SqlLatestMetric).where(
                        SqlLatestMetric.run_uuid.in_(chunk))).scalars():
                    latest[(row.run_uuid, row.key)] = (row.step, row.timestamp, row.value,
                                                       row.is_nan)
            touched = set()
            for (run_id, (key, timestamp, step, value, is_nan)) in metrics:
                seen = latest.get((run_id, key))
                if seen is None or (step, timestamp, value) > seen[:3]:
                    latest[(run_id, key)] = (step, timestamp, value, is_nan)
                touched.add((run_id, key))

            if runs:
                session.execute(insert(SqlRun.__table__), runs)
            if params:
                session.execute(insert(SqlParam.__table__), params)
            if tags:
                upsert = insert(SqlTag.__table__)
                session.execute(upsert.on_conflict_do_update(
                    index_elements=["key", "run_uuid"], set_={"value": upsert.excluded.value}),
                    [{"run_uuid": r, "key": k, "value": v} for (r, k), v in tags.items()])
            if metrics:
                session.execute(insert(SqlMetric.__table__).on_conflict_do_nothing(), [
                    {"run_uuid": r, "key": k, "timestamp": t, "step": s, "value": v, "is_nan": n}
                    for (r, (k, t, s, v, n)) in metrics])
                upsert = insert(SqlLatestMetric.__table__)
                session.execute(upsert.on_conflict_do_update(
                    index_elements=["key", "run_uuid"],
                    set_={c: getattr(upsert.excluded, c)
                          for c in ("value", "timestamp", "step", "is_nan")}),
                    [{"run_uuid": r, "key": k, "step": s, "timestamp": t, "value": v, "is_nan": n}
                     for (r, k), (s, t, v, n) in latest.items() if (r, k) in touched])
            if ends:
                session.execute(update(SqlRun.__table__)
                                .where(SqlRun.__table__.c.run_uuid == bindparam("rid"))
                                .values(status=bindparam("st"), end_time=bindparam("et")), ends)


def store_revision(tracking_uri: str) -> str | None:
    """The alembic revision a sqlite store's schema is at, read from its ``alembic_version``
    table as MLflow's own check (``mlflow.store.db.utils._get_schema_version``) reads it.

    Returns:
        None for anything else: not a sqlite URI, no such file (none is created), no such
        table, not exactly one revision, a database that cannot be read.
    """
    import sqlalchemy

    try:
        url = sqlalchemy.engine.make_url(tracking_uri)
    except sqlalchemy.exc.ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or not url.database or not Path(url.database).is_file():
        return None
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            revisions = connection.execute(
                sqlalchemy.text("SELECT version_num FROM alembic_version")).scalars().all()
    except sqlalchemy.exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    return str(revisions[0]) if len(revisions) == 1 else None


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


#: Where empty sqlite stores, one per MLflow release, are kept to be copied (see :func:`seed_store`).
CACHE_ENV = "MIXUP_CACHE_DIR"


def seed_store(tracking_uri: str, *, cwd: Path | None = None) -> bool:
    """Creates a new sqlite store by copying an empty one made by this MLflow release, instead
    of letting MLflow run its ~50 schema migrations (~0.9 s) on the critical path of every new
    store. Returns whether it did; anything but a sqlite URI of a file that does not exist yet
    is left to MLflow.

    The empty store is made once per MLflow release by MLflow itself (``MlflowClient`` on a
    temporary file), kept under ``$MIXUP_CACHE_DIR`` (default ``~/.cache/mixup-sweeps``), and
    its revision checked against :func:`store_revision`. The copy's Default experiment gets the
    artifact location MLflow would have given it (``<cwd>/mlruns/0``). Both files appear
    atomically (a hard link of a finished file), so concurrent drivers never see half a store.
    """
    import sqlalchemy

    try:
        url = sqlalchemy.engine.make_url(tracking_uri)
    except sqlalchemy.exc.ArgumentError:
        return False
    if url.get_backend_name() != "sqlite" or not url.database or url.query:
        return False
    target = Path(url.database)
    if target.exists() or not target.parent.is_dir():
        return False
    import mlflow

    template = _empty_store(mlflow.__version__)
    if template is None:
        return False
    import sqlite3

    partial = target.with_name(f".{target.name}.{os.getpid()}.seed")
    try:
        shutil.copyfile(template, partial)
        with contextlib.closing(sqlite3.connect(partial)) as db, db:
            db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                       (str(Path(cwd or Path.cwd()).resolve() / "mlruns" / "0"),))
        os.link(partial, target)  # fails if another process seeded it first: theirs is whole
    except FileExistsError:
        pass
    except (OSError, sqlite3.Error):
        return False
    finally:
        partial.unlink(missing_ok=True)
    return True


def _empty_store(version: str) -> Path | None:
    """The empty store of MLflow ``version`` in the cache, made on first use (None when the
    cache cannot be written or the schema is not one this writer knows)."""
    folder = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mixup-sweeps")
    path = folder / f"mlflow-{version}-empty.db"
    if path.is_file():
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            fresh = Path(scratch) / "empty.db"
            from mlflow.tracking import MlflowClient

            MlflowClient(tracking_uri=f"sqlite:///{fresh}").search_experiments()
            if store_revision(f"sqlite:///{fresh}") not in TESTED_REVISIONS:
                return None
            with contextlib.suppress(FileExistsError):
                os.link(fresh, path)
    except OSError:
        return None
    return path if path.is_file() else None
