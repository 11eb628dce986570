"""What a sweep folder survives: torn and foreign record lines, lost tables, a second driver,
names and sizes that would write outside the storage or exhaust the machine, secrets at rest."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster import local
from mixup_cli.main import main
from sweeps import best_configs
from sweeps.store import EPOCHS_FILE, TRIALS_FILE, lock
from sweeps.store.records import RecordLog
from sweeps.tracking import absolute_uri
from tests.sweep_helpers import mixup_sweep, sweep_runs, write_finished_sweep, write_spec

#: tests/test_layering.py imports the finished-sweep helper from here by this name.


def test_a_torn_last_line_is_skipped_and_the_next_event_starts_on_a_new_line(tmp_path, capsys):
    folder = write_finished_sweep(tmp_path, "torn")
    with (folder / "records.jsonl").open("a") as out:
        out.write('{"type": "epoch", "trial_id": "t1", "ep')  # a driver killed mid-write
    log = RecordLog(folder)
    log.trial_started("t9", {"mixup.alpha": 9.0})
    log.close()
    assert "t9" in RecordLog(folder).trials
    lines = (folder / "records.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["trial_id"] == "t9"
    assert "(line 9)" in capsys.readouterr().err  # 8 events, then the torn one


def test_foreign_and_undecodable_lines_are_skipped_with_one_warning_naming_them(tmp_path):
    folder = write_finished_sweep(tmp_path, "dirty")
    with (folder / "records.jsonl").open("ab") as out:
        out.write(b'{"foo": 1}\n\xff\xfe not utf-8\n{"type": "epoch", "trial_id": "t0"}\n')
    out = mixup_sweep("best", "dirty", "--storage", str(tmp_path), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout.splitlines()[-1])) == 2
    warning = [line for line in out.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and "line 9, 10, 11" in warning[0], out.stderr


def test_the_config_of_a_later_start_event_is_kept(tmp_path):
    log = RecordLog(tmp_path)
    log.trial_finished("lost", "ERROR", "actor died")  # an end before any start
    log.trial_started("lost", {"mixup.alpha": 2.0})  # retried: its start comes later
    log.close()
    record = RecordLog(tmp_path).trials["lost"]
    assert record.config == {"mixup.alpha": 2.0} and record.status == "RUNNING"


@pytest.mark.parametrize("missing", ["trials.parquet", "epochs.parquet"])
def test_a_missing_table_is_rebuilt_from_the_records(tmp_path, missing):
    folder = write_finished_sweep(tmp_path, "rebuilt")
    assert main(["best", "rebuilt", "--storage", str(tmp_path)]) == 0
    (folder / missing).unlink()
    assert main(["export", "rebuilt", "--storage", str(tmp_path),
                 "--out", str(tmp_path / "out.parquet")]) == 0
    assert (folder / missing).is_file()
    assert len(pd.read_parquet(tmp_path / "out.epochs.parquet")) == 4


def hold_driver_lock(folder: Path) -> subprocess.Popen[str]:
    """Another process that holds the sweep's driver lock, as a running driver does."""
    code = ("import signal, sys; from pathlib import Path; from sweeps.store.lock import DriverLock; "
            "held = DriverLock(Path(sys.argv[1]), name='x'); print('locked', flush=True); "
            "signal.pause()")  # held until the test kills it
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_best_on_a_live_sweep_reads_its_records_and_writes_nothing_there(tmp_path):
    folder = write_finished_sweep(tmp_path, "live")
    for table in (TRIALS_FILE, EPOCHS_FILE):  # a running sweep's tables come at its end
        (folder / table).unlink()
    driver = hold_driver_lock(folder)
    try:
        before = sorted(p.name for p in folder.iterdir())
        assert main(["best", "live", "--storage", str(tmp_path), "--scope", "last"]) == 0
        log = RecordLog(folder)
        log.epoch("t0", 30, {"epoch": 30, "val/acc_rare": 0.99})  # a new result arrives
        log.close()
        ranked = best_configs("live", storage=tmp_path, scope="last")
        assert ranked.iloc[0]["trial_id"] == "t0" and ranked.iloc[0]["value"] == 0.99
        assert sorted(p.name for p in folder.iterdir()) == before  # no Parquet written
        assert main(["report", "live", "--storage", str(tmp_path), "--no-mlflow"]) == 2
        assert main(["report", "live", "--storage", str(tmp_path), "--no-mlflow",
                     "--out", str(tmp_path / "elsewhere")]) == 0
        assert (tmp_path / "elsewhere" / "report.html").is_file()
        assert sorted(p.name for p in folder.iterdir()) == before  # no report there either
    finally:
        driver.kill()
        driver.wait()


def test_a_second_driver_of_a_running_sweep_exits_2_naming_the_first(tmp_path, capsys):
    folder = write_finished_sweep(tmp_path, "busy")
    driver = hold_driver_lock(folder)
    try:
        assert main(["resume", "busy", "--storage", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert f"pid {driver.pid} on {socket.gethostname()}" in err, err
        assert main(["sync", "busy", "--storage", str(tmp_path)]) == 2
    finally:
        driver.kill()
        driver.wait()
    # The kernel frees the lock of a dead driver: the next one takes it at once.
    lock.DriverLock(folder, name="busy").release()


def test_two_runs_of_one_sweep_at_once_make_one_sweep(tmp_path):
    spec = write_spec(tmp_path, "twice", search_space={
        "mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]}})
    command = [sys.executable, "-m", "mixup_cli", "run", str(spec), "--storage", "res",
               "--tracking-uri", "sqlite:///relative/mlflow.db"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    (tmp_path / "relative").mkdir()
    procs = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    refused = next(err for p, (_, err) in zip(procs, outs, strict=True) if p.returncode == 2)
    assert "being run by pid" in refused or "already exists" in refused, refused
    meta = json.loads((tmp_path / "res" / "twice" / "sweep.json").read_text())
    uri = f"sqlite:///{(tmp_path / 'relative' / 'mlflow.db').resolve()}"
    assert meta["tracking_uri"] == uri  # made absolute when the sweep started
    assert len(RecordLog(tmp_path / "res" / "twice").trials) == 2
    _, children = sweep_runs(uri, "twice")
    assert len(children) == 2
    assert len(pd.read_parquet(tmp_path / "res" / "twice" / "trials.parquet")) == 2
    winner = next(out for p, (out, _) in zip(procs, outs, strict=True) if p.returncode == 0)
    assert "mixup-sweep ui twice --storage " in winner  # the UI opened on this sweep's runs


BAD_NAMES = ["../escape", "/abs/name", ".", "..", "a/b", "x" * 300, "quote'd", "new\nline", "",
             "-flag"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_that_is_not_a_plain_folder_name_exits_2_before_anything_is_written(
        tmp_path, capsys, name):
    spec = write_spec(tmp_path, "named", search_space={})
    storage = tmp_path / "res"
    assert main(["run", str(spec), "--storage", str(storage), f"--name={name}"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--name" in err, err
    assert not storage.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["named.yaml"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=120))
def test_any_name_given_to_best_gives_one_line_and_writes_nothing(tmp_path, capsys, name):
    storage = tmp_path / "res"
    try:
        code = main(["best", name, "--storage", str(storage)])
    except SystemExit as exit_:  # argparse: a name that looks like an option
        code = int(exit_.code or 0)
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err and (len(err.splitlines()) == 1 or "usage:" in err)
    assert not storage.exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(["--num-samples", "--max-concurrent"]),
       value=st.one_of(st.integers(max_value=0), st.integers(min_value=100_001, max_value=10**12)))
def test_out_of_range_budget_flags_exit_2_naming_the_flag(tmp_path, capsys, flag, value):
    spec = write_spec(tmp_path, "budget", search_space={})
    assert main(["run", str(spec), "--storage", str(tmp_path / "res"), flag, str(value)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("num_samples" in err or flag in err
                                           or "max_concurrent" in err), err
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize(("assignment", "key"), [
    ("data.dim=1000000000", "data.dim"), ("data.dim=900000", "data.dim"),
    ("data.n_train=100000000", "data.n_train"), ("optim.epochs=1e30", "optim.epochs"),
    ("model.width=100000", "model.width"),
])
def test_sizes_that_would_exhaust_the_machine_exit_2_naming_the_key(capsys, assignment, key):
    assert main(["train", "--set", assignment]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"error: {key}:" in err, err
    assert "<=" in err or "limit" in err, err


@pytest.mark.parametrize(("section", "key"), [
    ({"trial": {"optim.epochs": 1e30}}, "optim.epochs"),
    ({"search": {"algorithm": "random", "num_samples": 1_000_000_000}}, "search.num_samples"),
])
def test_a_spec_with_an_absurd_budget_exits_2_naming_the_key(tmp_path, capsys, section, key):
    spec = write_spec(tmp_path, "absurd", search_space={}, **section)
    assert main(["plan", str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err, err


def test_a_storage_folder_that_cannot_be_written_exits_2(tmp_path, capsys):
    spec = write_spec(tmp_path, "nowhere", search_space={})
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["run", str(spec), "--storage", str(blocker / "res")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--storage" in err, err


def test_a_tracking_store_that_cannot_be_written_exits_2(tmp_path, capsys):
    spec = write_spec(tmp_path, "untracked", search_space={})
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["run", str(spec), "--storage", str(tmp_path / "res"),
                 "--tracking-uri", f"sqlite:///{blocker}/mlflow.db"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "mlflow.db" in err, err


def test_relative_sqlite_uris_become_absolute_and_others_stay(tmp_path):
    assert absolute_uri("sqlite:///dir/x.db", tmp_path) == f"sqlite:///{tmp_path / 'dir/x.db'}"
    assert absolute_uri("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"
    assert absolute_uri("http://127.0.0.1:5000", tmp_path) == "http://127.0.0.1:5000"


def test_the_cluster_token_is_never_readable_by_others(tmp_path):
    old = os.umask(0)  # the most permissive umask: write_text would make the file 0666
    try:
        local.write_secret(tmp_path / "token", "secret")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    local.write_secret(tmp_path / "token", "again")  # a new cluster: a new file, still 0600
    assert (tmp_path / "token").read_text() == "again"
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
