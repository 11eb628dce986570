"""The sweep driver: ``run``, ``resume`` and what happens around Ray.

The sweep's folder is described in sweeps.store.layout; the driver holds its lock (sweeps.store.lock) while
it runs, sends every trial event through its sink (sweeps.execution.sink: records, then MLflow), and
writes the Parquet tables at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from mixup_core import plugin_specs
from mixup_core.config import TrialConfig, to_flat
from mixup_core.data import check_available
from sweeps.errors import (
    SweepInterrupted,
    TrackingUnavailable,
    UsageError,
    storage_fault,
    storage_refusal,
)
from sweeps.execution import packing, ray_patches
from sweeps.execution.failpoints import failpoint
from sweeps.execution.repair import repair_holes
from sweeps.execution.sink import OPEN_SINKS, DriverSink, SinkFactory
from sweeps.spec import SweepSpec, is_image_trial
from sweeps.store import provenance
from sweeps.store.layout import (
    META_FILE,
    TUNE_DIR,
    check_name,
    read_meta,
    stored_spec,
    sweep_dir,
    tune_state_saved,
    writable_storage,
    write_meta,
)
from sweeps.store.lock import LOCK_FILE, DriverLock
from sweeps.store.parquet_io import write_tables
from sweeps.store.records import FINAL_STATUSES, RECORDS_FILE, RecordLog
from sweeps.sweep import Sweep
from sweeps.tracking import SweepTracker, bounded_http, prewarm, tracking_unusable
from sweeps.tracking.sync import replay_trial, trial_tags

# ---------------------------------------------------------------------------- run / resume


@dataclass
class SweepOutcome:
    #: The sweep's handle, from the driver's memory (its records, spec and sweep.json).
    sweep: Sweep
    directory: Path
    trials: int
    errored: int
    wall_seconds: float
    tracking_uri: str
    unsynced: int  # trials whose MLflow runs lag their records (replay: mixup-sweep sync)
    tracking_failures: int
    mlflow_complete: bool
    last_tracking_error: str = ""
    #: Seconds the driver's MLflow writer spent in MLflow calls (it runs beside Tune's loop).
    mlflow_seconds: float = 0.0
    #: Seconds from Tune's end to the last MLflow write delivered.
    drain_seconds: float = 0.0


def _gpu_members(spec: SweepSpec, cluster: dict[str, Any], stream: TextIO) -> int | None:
    """How many image-trial members one GPU holds (``pack: auto`` on GPUs), from the memory
    probe; None (the fixed cap) where it does not apply or fails (one note line)."""
    if (spec.pack != "auto" or not cluster["gpus"] or spec.resources.gpu <= 0
            or not is_image_trial(spec.base)):
        return None
    try:
        members = packing.probe_gpu_members(spec)
    except RuntimeError as err:
        print(f"note: {err}; packs of image trials hold at most "
              f"{packing.MAX_IMAGE_MEMBERS} members", file=stream, flush=True)
        return None
    print(f"note: one GPU holds {members} members of these image trials (memory probe)",
          file=stream, flush=True)
    return members


def _drive(spec: SweepSpec, directory: Path, meta: dict[str, Any], *, address: str | None,
           resume: bool, stream: TextIO) -> SweepOutcome:
    from sweeps.execution import tuner  # Ray is imported only when a sweep really runs

    # A down tracking server must fail fast (the records buffer), not block in MLflow's retries.
    with bounded_http(10, keep_user_settings=True):
        return _drive_tracked(spec, directory, meta, tuner, address=address, resume=resume,
                              stream=stream)


def _drive_tracked(spec: SweepSpec, directory: Path, meta: dict[str, Any], tuner: Any, *,
                   address: str | None, resume: bool, stream: TextIO) -> SweepOutcome:
    tracker = _open_parent_run(spec, directory, meta, meta["tracking_uri"], fresh=not resume)
    try:
        sink = DriverSink(directory, spec, tracker, stream)
    except BaseException:
        with contextlib.suppress(Exception):
            tracker.finish_sweep("FAILED")  # never leave the parent run RUNNING
        raise
    OPEN_SINKS[str(directory)] = sink
    started = time.monotonic()
    status = "FAILED"
    refusal: OSError | None = None  # the storage refused a write (full, read-only)
    interrupted = False
    on_term: Any = None
    try:
        cluster = tuner.connect(address or meta.get("address"), py_modules=shipped(spec))
        # SIGTERM stops the sweep as Ctrl-C does: Ray Tune ends its loop at the next step (set
        # here, after Ray installed its own handler, which would abort the process)
        on_term = _term_as_interrupt()
        pack = meta.get("pack_size")
        if pack is None:  # fixed when the sweep starts, so that resume rebuilds the same packs
            pack = packing.pack_size(spec, spec.pack, cpus=cluster["cpus"], gpus=cluster["gpus"],
                                     memory=cluster["memory"],
                                     gpu_members=_gpu_members(spec, cluster, stream))
            meta["pack_size"] = pack
            write_meta(directory, meta)
        sink.packed = pack > 1
        per_pack = f", {pack} per pack" if pack > 1 else ""
        print(f"Ray: {cluster['nodes']} node(s), {cluster['cpus']:g} CPUs, "
              f"{cluster['gpus']:g} GPUs; {spec.trial_count()} trials planned{per_pack}",
              file=stream,
              flush=True)
        # sweep.json is written, Ray Tune's state not yet: a driver killed here leaves a sweep
        # that `resume` starts afresh (tests/execution/test_no_dead_ends.py holds it here)
        failpoint("driver", node_id="driver", trial_id=meta["name"])
        rounds: list[list[list[dict[str, Any]]]] = meta.setdefault("split_rounds", [])
        if resume and rounds:  # the last split round was running
            name = _round_name(len(rounds))
            if tune_state_saved(directory, name):
                tuner.resume_sweep(spec, directory, packs=rounds[-1], name=name)
            else:
                tuner.run_packs(spec, directory, SinkFactory(str(directory)), packs=rounds[-1],
                                name=name)
        elif resume and tune_state_saved(directory):
            tuner.resume_sweep(spec, directory, pack=pack)
        else:
            tuner.run_sweep(spec, directory, SinkFactory(str(directory)), pack=pack)
        while pack > 1 and (packs := packing.plan_split(sink.log.trials.values())):
            rounds.append(packs)  # kept before it runs: resume goes on with this round
            write_meta(directory, meta)
            print(f"note: {sum(map(len, packs))} trial(s) of a pack that failed "
                  f"{spec.retries + 1} time(s) go on from its state in {len(packs)} smaller "
                  "pack(s)", file=stream, flush=True)
            tuner.run_packs(spec, directory, SinkFactory(str(directory)), packs=packs,
                            name=_round_name(len(rounds)))
        ended = sum(1 for r in sink.log.trials.values() if r.status in FINAL_STATUSES)
        planned = max(int(meta.get("trials_planned") or 0), len(sink.log.trials))
        # Ray Tune ends `fit` quietly on Ctrl-C (SIGTERM is turned into one by the CLI)
        interrupted = ended < planned
        status = "KILLED" if interrupted else "FINISHED"
    except Exception as err:
        if (refusal := storage_refusal(err)) is None:
            raise
    finally:
        if on_term is not None:
            signal.signal(signal.SIGTERM, on_term)
        OPEN_SINKS.pop(str(directory), None)
        sink.display.close()
        try:
            write_tables(directory, sink.log, spec.objective.metric, spec.objective.mode)
        except OSError as err:  # the records hold everything; `best` rebuilds the tables
            if (refused := storage_refusal(err)) is None:
                raise
            refusal = refusal or refused
        # How long the end of a sweep waits for a down tracking server before giving up.
        tune_ended = time.monotonic()
        complete = sink.flush(timeout=float(os.environ.get("MIXUP_FINAL_SYNC_TIMEOUT", "30")))
        drained = time.monotonic() - tune_ended
        sweep = Sweep.from_driver(directory, meta, sink.log, spec)
        if complete:
            try:
                if status == "FINISHED":  # no ranking of half-trained trials
                    _log_best(tracker, sweep)
                tracker.finish_sweep(status)
            except Exception:
                complete = False  # the parent run's status; `sync` sets it
        with contextlib.suppress(OSError):  # a full disk: what it could not write is lost anyway
            sink.log.close()
    if refusal is not None:
        parent = " (its MLflow parent run closed FAILED)" if complete else ""
        raise storage_fault(refusal, f"sweep {meta['name']!r} stopped", then=(
            f"what was recorded is kept{parent}; free space or make the storage writable, "
            f"then `mixup-sweep resume {meta['name']}`"))
    if interrupted:
        raise SweepInterrupted(meta["name"], ended, planned)
    errored = sum(1 for r in sink.log.trials.values() if r.status == "ERROR")
    return SweepOutcome(sweep, directory,
                        len(sink.log.trials), errored, time.monotonic() - started,
                        meta["tracking_uri"], len(sink.unsynced), sink.tracking_failures,
                        complete, sink.last_error, sink.mlflow_seconds, drained)


def _term_as_interrupt() -> Any:
    """SIGTERM becomes SIGINT (what Ray Tune stops on) in the main thread; returns the handler
    it replaces, or None where signals cannot be set (another thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))


def _round_name(number: int) -> str:
    """The Tune experiment (folder) of split round ``number`` (from 1; packing.plan_split)."""
    return f"{TUNE_DIR}-split-{number}"


def _log_best(tracker: SweepTracker, sweep: Sweep) -> None:
    """The best trial by the objective at its best epoch, on the sweep's parent run."""
    from sweeps.tracking import run_name

    metric = sweep.objective[0]
    _, epochs = sweep.tables()
    if epochs.empty or metric not in epochs:
        return
    best = sweep.best(scope="best-epoch", top=1)
    if best.empty:
        return
    row = best.iloc[0]
    trial_id = str(row["trial_id"])
    tracker.set_best(trial_id=trial_id, name=run_name(sweep.records().trials[trial_id].config,
                                                      sweep.searched_keys),
                     metric=metric, value=float(row["value"]), epoch=int(row["epoch"]))
    tracker.describe_best(row.to_dict(), metric=metric, trials=len(sweep.records().trials),
                          seeds=len(sweep.seeds))


def sync(name: str, *, storage: str | Path, tracking_uri: str | None = None,
         stream: TextIO = sys.stdout) -> int:
    """``mixup-sweep sync``: replays a sweep's records into MLflow; returns trials replayed."""
    meta = read_meta(storage, name)
    directory = sweep_dir(storage, name)
    lock = DriverLock(directory, name=name)  # a running driver is the one writer of its runs
    try:
        spec = stored_spec(meta)
        tracker = _open_parent_run(spec, directory, meta, tracking_uri or meta["tracking_uri"])
        log = RecordLog(directory)
        for record in log.trials.values():  # tags from the records, not from this checkout
            tags = trial_tags(provenance.as_tags(record.provenance or meta.get("provenance")),
                              list(spec.seeds))
            replay_trial(tracker, record, tags=tags, metric=spec.objective.metric,
                         mode=spec.objective.mode)
            print(f"{record.trial_id}: {len(record.epochs)} epochs, {record.status}", file=stream)
        done = all(r.status in FINAL_STATUSES for r in log.trials.values())
        tracker.finish_sweep("FINISHED" if done else "KILLED")
    finally:
        lock.release()
    return len(log.trials)


def _open_parent_run(spec: SweepSpec, directory: Path, meta: dict[str, Any],
                     uri: str, *, fresh: bool = False) -> SweepTracker:
    """Checks the store, then creates or re-attaches the sweep's parent run (kept in meta)."""
    tracker = SweepTracker(uri, sweep_name=meta["name"], param_keys=trial_param_keys(spec),
                           extra_params={"seeds": json.dumps(list(spec.seeds))},
                           name_keys=list(spec.search_space), sweep_id=meta.get("sweep_id"))
    tracker.check()
    same_store = uri == meta["tracking_uri"]
    if fresh and not meta.get("allow_same_name") and (others := tracker.other_sweeps_parents()):
        raise UsageError(f"sweep {meta['name']!r}: {uri} already holds a sweep of this name from "
                         f"another storage folder (parent run {others[0]}); pass --name NEW_NAME, "
                         "or --allow-same-name to log beside it (each keeps its own runs)")
    try:
        meta["experiment_id"] = tracker.ensure_experiment()
        meta["parent_run_id"] = tracker.start_sweep(
            params={"spec." + k: v for k, v in _spec_params(spec).items()},
            tags={**provenance.as_tags(meta.get("provenance")),
                  "mixup_sweeps.spec": meta["spec_path"],
                  # the run's description in the MLflow UI
                  "mlflow.note.content": spec.description or f"Sweep {meta['name']}"},
            parent_run_id=meta.get("parent_run_id") if same_store else None,
        )
    except TrackingUnavailable:
        raise
    except Exception as err:  # e.g. a read-only sqlite file: readable, so check() passed
        raise tracking_unusable(uri, err) from err
    meta["tracking_uri"] = uri
    try:
        write_meta(directory, meta)
    except OSError as err:  # a full or read-only folder: the parent run must not stay RUNNING
        with contextlib.suppress(Exception):
            tracker.finish_sweep("FAILED")
        if (refusal := storage_refusal(err)) is None:
            raise
        raise storage_fault(refusal, f"sweep {meta['name']!r}", then=(
            "nothing recorded is lost; free space or make the storage writable, then run "
            "the command again")) from None
    return tracker


def trial_param_keys(spec: SweepSpec) -> set[str]:
    """The config keys a trial's MLflow run shows as params: the searched keys and those the
    spec sets away from the defaults (not ``seed``: a trial averages the spec's seeds, logged
    as the ``seeds`` param). The whole config is in the run's ``mixup_sweeps.config`` tag."""
    defaults = to_flat(TrialConfig())
    changed = {k for k, v in to_flat(spec.base).items() if defaults.get(k) != v}
    return (set(spec.search_space) | changed) - {"seed"}


def _spec_params(spec: SweepSpec) -> dict[str, Any]:
    params: dict[str, Any] = {
        "search.algorithm": spec.search.algorithm, "search.num_samples": spec.search.num_samples,
        "search.max_concurrent": spec.search.max_concurrent, "search.seed": spec.search.seed,
        "objective.metric": spec.objective.metric, "objective.mode": spec.objective.mode,
        "scheduler.kind": spec.scheduler.kind, "seeds": list(spec.seeds),
        "resources.cpu": spec.resources.cpu, "resources.gpu": spec.resources.gpu,
    }
    for key, dim in spec.search_space.items():
        params[f"search_space.{key}"] = dim.kind + (
            f"{list(dim.values)}" if dim.values else f"[{dim.low}, {dim.high}]")
    return params


def start_run(spec: SweepSpec, spec_path: str, *, storage: str | Path, name: str | None,
              tracking_uri: str, address: str | None, smoke: bool,
              num_samples: int | None, max_concurrent: int | None,
              pack: int | str | None = None, stream: TextIO = sys.stdout,
              allow_same_name: bool = False,
              sets: dict[str, Any] | None = None) -> SweepOutcome:
    """``mixup-sweep run``: a new sweep in ``<storage>/<name>``; ``sets`` are ``run --set``'s
    overrides, kept in ``sweep.json`` so ``resume`` runs the same spec."""
    ray_patches.check_ray()  # an untested Ray: one line, before anything is written
    # the command line's overrides (--pack, --num-samples, ...): one line naming the flag
    spec.with_overrides(num_samples=num_samples, max_concurrent=max_concurrent, pack=pack)
    if name is not None:
        sweep_name = check_name(name, field="--name")
    else:  # a smoke run never takes the real sweep's name (nor blocks it)
        sweep_name = check_name(f"{spec.name}-smoke" if smoke else spec.name, field="name")
    meta = {
        "name": sweep_name, "spec_path": spec_path, "spec_text": Path(spec_path).read_text(),
        "smoke": smoke, "num_samples": num_samples, "max_concurrent": max_concurrent,
        "pack": pack, "sets": dict(sets or {}),
        "tracking_uri": tracking_uri, "address": address, "created": time.time(),
        "objective": {"metric": spec.objective.metric, "mode": spec.objective.mode},
        "provenance": provenance.collect(),
        # runs are found by this id (and the parent run's), never by the name alone
        "sweep_id": uuid.uuid4().hex, "allow_same_name": allow_same_name,
    }
    resolved = stored_spec(meta)
    meta["seeds"] = list(resolved.seeds)
    meta["trials_planned"] = resolved.trial_count()
    meta["objectives"] = [{"metric": o.metric, "mode": o.mode} for o in resolved.all_objectives]
    check_available(resolved.base.data)  # missing data: one line, before anything is written
    if resolved.plugins or plugin_specs.installed():  # a plugin model's output shape, one line
        from mixup_core import plugins

        for note in plugins.preflight(resolved.base.replace(seed=resolved.seeds[0])):
            print(note, file=sys.stderr, flush=True)
    directory = writable_storage(storage) / sweep_name
    if (directory / META_FILE).exists():
        raise _exists(sweep_name, directory)
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"sweep name {sweep_name!r}: {directory} is a file, not a sweep folder; "
                         "pass --name NEW_NAME or another --storage")
    from sweeps.execution import tuner

    warming = prewarm(tracking_uri)  # MLflow's start-up runs while Ray starts
    # a cluster that cannot be joined: one line, before anything is written
    tuner.connect(address, py_modules=shipped(resolved))
    if warming.is_alive():
        warming.join()
    directory.mkdir(exist_ok=True)
    lock = DriverLock(directory, name=sweep_name)
    try:
        if (directory / META_FILE).exists():  # another driver created it meanwhile
            raise _exists(sweep_name, directory)
        return _drive(resolved, directory, meta, address=address, resume=False, stream=stream)
    finally:
        lock.release()
        if not (directory / META_FILE).exists():  # failed before it began: leave no trace
            with contextlib.suppress(OSError):
                (directory / LOCK_FILE).unlink()
                directory.rmdir()


def _start_afresh(directory: Path, name: str) -> str:
    """Readies a sweep that Ray Tune never saved for a first start in its folder; returns the
    line saying so. Trials that started before the driver died (Tune keeps no trace of them)
    start again; their records are kept aside, never deleted."""
    shutil.rmtree(directory / TUNE_DIR, ignore_errors=True)  # nothing restorable in it
    records = directory / RECORDS_FILE
    started = len(RecordLog(directory).trials) if records.is_file() else 0
    if not started:
        records.unlink(missing_ok=True)
        return f"sweep {name!r}: its driver stopped before Ray Tune saved its state; it starts now"
    aside = records.with_name(f"records.before-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
    records.rename(aside)
    return (f"sweep {name!r}: its driver stopped before Ray Tune saved its state; its {started} "
            f"started trial(s) start again (their first records are kept in {aside.name})")


def _exists(name: str, directory: Path) -> UsageError:
    return UsageError(f"sweep {name!r} already exists in {directory.parent}; continue it with "
                      f"`mixup-sweep resume {name}` or pass --name NEW_NAME")


def shipped(spec: SweepSpec) -> list[str]:
    """The spec's local plugin files and folders, which Ray ships to every node."""
    return [entry for entry in spec.plugins if plugin_specs.is_path(entry)]


def check_plugins(meta: dict[str, Any], *, allow_changed: bool) -> None:
    """Raises UsageError (one line) when a plugin the sweep started with has other code now."""
    recorded = (meta.get("provenance") or {}).get("plugins") or []
    if not recorded or allow_changed:
        return
    from mixup_core import plugins

    if lines := plugins.changed(recorded):
        raise UsageError(f"resume {meta.get('name')!r}: {lines[0]}; its trials would mix two "
                         f"versions of the code (--allow-changed-plugins resumes anyway)")


def resume_run(name: str, *, storage: str | Path, address: str | None = None,
               stream: TextIO = sys.stdout, allow_changed_plugins: bool = False) -> SweepOutcome:
    """``mixup-sweep resume``: continue an interrupted sweep from Tune's state and checkpoints."""
    ray_patches.check_ray()
    from sweeps.execution import tuner

    meta = read_meta(storage, name)
    directory = sweep_dir(storage, name)
    lock = DriverLock(directory, name=name)
    try:
        spec = stored_spec(meta)
        check_plugins(meta, allow_changed=allow_changed_plugins)
        # before sweep.json is written again
        tuner.connect(address or meta.get("address"), py_modules=shipped(spec))
        if not tune_state_saved(directory):  # its driver died before Tune saved its state
            print(_start_afresh(directory, name), file=stream, flush=True)
        log = RecordLog(directory)  # a torn line's epoch, restored before the trials go on
        try:
            for line in repair_holes(directory, log, len(spec.seeds)):
                print(line, file=stream, flush=True)
        finally:
            log.close()
        return _drive(spec, directory, meta, address=address, resume=True, stream=stream)
    finally:
        lock.release()
