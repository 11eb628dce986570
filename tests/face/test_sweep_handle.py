"""The Sweep handle and the Python entry points: read once, ask everything; run from Python.

Both tests run a real sweep (local Ray, a sqlite MLflow store) in a fresh interpreter, so Ray
never starts inside the test process, and count the reads the code makes at the lowest level:
``sweep.json`` opened, Parquet files read, the driver's lock checked, the stored spec parsed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sweep_helpers import cli_env, write_spec

pytestmark = pytest.mark.slow

#: Installs counters on the lowest-level reads; ``COUNTS`` is what they saw while ``counting``.
COUNTERS = """
import builtins, collections, contextlib, io, json, pathlib, sys
import pyarrow.parquet as pq
import sweeps.spec.yaml_numbers as yaml_numbers
import sweeps.store.lock as lock

COUNTS = collections.Counter()
counting = [False]

def _note(path):
    if counting[0]:
        name = pathlib.Path(str(path)).name
        if name == "sweep.json":
            COUNTS["sweep.json"] += 1
        elif name.endswith(".parquet"):
            COUNTS["parquet"] += 1

# Path.read_text/read_bytes go through Path.open, so each file opened counts once
_path_open, _open = pathlib.Path.open, builtins.open
def path_open(self, *a, **k):
    _note(self); return _path_open(self, *a, **k)
def open_(file, *a, **k):
    if isinstance(file, (str, pathlib.Path)): _note(file)
    return _open(file, *a, **k)
pathlib.Path.open, builtins.open = path_open, open_

_read_table = pq.read_table
def read_table(path, *a, **k):
    _note(path); return _read_table(path, *a, **k)
pq.read_table = read_table

_idle = lock.idle
@contextlib.contextmanager
def idle(directory):
    if counting[0]: COUNTS["lock"] += 1
    with _idle(directory) as free:
        yield free
lock.idle = idle

_folder_state = lock.folder_state
def folder_state(directory):
    if counting[0]: COUNTS["lock"] += 1
    return _folder_state(directory)
lock.folder_state = folder_state

# every parse of a stored spec starts by reading its YAML text
_safe_load = yaml_numbers.safe_load
def safe_load(*a, **k):
    if counting[0]: COUNTS["spec"] += 1
    return _safe_load(*a, **k)
yaml_numbers.safe_load = safe_load
"""

AFTER_RUN = COUNTERS + """
from mixup_cli import sweep_commands
from mixup_cli.main import main

_summarise = sweep_commands._summarise
def summarise(outcome, **k):
    counting[0] = True
    try:
        return _summarise(outcome, **k)
    finally:
        counting[0] = False
sweep_commands._summarise = summarise
code = main(["run", sys.argv[1], "--storage", "res"])
print("COUNTS " + json.dumps({"code": code, **COUNTS}))
"""


def _last(out: subprocess.CompletedProcess[str], tag: str) -> dict:
    line = next((x for x in reversed(out.stdout.splitlines()) if x.startswith(tag + " ")), None)
    assert line is not None, (out.stdout[-2000:], out.stderr[-2000:])
    return json.loads(line[len(tag) + 1:])


def test_after_run_the_summary_and_the_report_read_nothing_back(tmp_path):
    spec = write_spec(tmp_path, "counted", seeds=[0, 1], search_space={
        "mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]}})
    out = subprocess.run([sys.executable, "-c", AFTER_RUN, str(spec)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env=cli_env())
    assert out.returncode == 0, out.stderr[-2000:]
    counts = _last(out, "COUNTS")
    assert counts.pop("code") == 0
    # the summary printed its tables and the report was built (both from memory)
    assert "Best configs by val/acc_rare (best-epoch)" in out.stdout
    assert (tmp_path / "res" / "counted" / "report" / "report.html").is_file()
    assert counts == {}, counts  # no sweep.json, no Parquet, no lock check, no spec parse


HANDLE = COUNTERS + """
import sweeps
from dashboards.report import build_report

try:
    sweeps.run("missing.yaml", storage="res", progress=False)
except (sweeps.SpecError, sweeps.UsageError) as err:
    print("ERROR " + json.dumps({"type": type(err).__name__, "message": str(err)}))

sweep = sweeps.run(sys.argv[1], storage="res", pack=2, progress=True)
print("RAN " + json.dumps({"type": type(sweep).__name__, "name": sweep.name,
                           "running": sweep.is_running,
                           "rows": len(sweep.best(top=None))}))

counting[0] = True
loaded = sweeps.load_sweep("handled", storage="res")
first = loaded.best(top=1)
answers = {
    "best": str(first["trial_id"].iloc[0]),
    "last": str(loaded.best(scope="last", top=1)["trial_id"].iloc[0]),
    "marginals": sorted(loaded.marginals()),
    "seeds": list(loaded.seeds), "searched": loaded.searched_keys,
    "status": loaded.status().summary.status, "epochs": loaded.status().epochs_total,
}
build_report(loaded, mlflow=False)
reads = dict(COUNTS)
loaded.refresh()
loaded.best(top=1)
counting[0] = False
print("HANDLE " + json.dumps({"answers": answers, "reads": reads, "after_refresh": dict(COUNTS)}))
"""


def test_a_sweep_runs_from_python_and_its_handle_reads_each_file_once(tmp_path):
    spec = write_spec(tmp_path, "handled", seeds=[0, 1], search_space={
        "mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]},
        "mixup.stop_epoch": {"kind": "grid", "values": [20, None]}})
    out = subprocess.run([sys.executable, "-c", HANDLE, str(spec)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env=cli_env())
    assert out.returncode == 0, out.stderr[-2000:]
    error = _last(out, "ERROR")
    assert error["type"] == "SpecError" and "missing.yaml" in error["message"]
    assert "\n" not in error["message"]
    ran = _last(out, "RAN")
    # 4 grid points, 3 distinct (α = 0 makes the stop irrelevant)
    assert ran == {"type": "Sweep", "name": "handled", "running": False, "rows": 3}
    # progress outside a terminal: plain lines, no control codes
    assert "trials finished" in out.stdout and "\x1b[" not in out.stdout
    handle = _last(out, "HANDLE")
    answers = handle["answers"]
    assert answers["seeds"] == [0, 1]
    assert answers["searched"] == ["mixup.alpha", "mixup.stop_epoch"]
    assert answers["marginals"] == ["mixup.alpha", "mixup.stop_epoch"]
    assert answers["status"] == "finished" and answers["epochs"] == 3 * 40
    # for every answer: one sweep.json read, two lock checks (is it running? then the
    # shared lock while the tables are read), the two Parquet files, one spec parse
    assert handle["reads"] == {"sweep.json": 1, "lock": 2, "parquet": 2, "spec": 1}
    # refresh reads it again, once
    assert handle["after_refresh"] == {"sweep.json": 2, "lock": 4, "parquet": 4, "spec": 1}
    assert (tmp_path / "res" / "handled" / "report" / "report.html").is_file()


def test_the_face_of_sweeps_imports_nothing_heavy():
    code = ("import sys, sweeps, sweeps.spec, sweeps.store, sweeps.tracking, sweeps.execution\n"
            "print(sorted(m for m in ('torch', 'ray', 'mlflow', 'pyarrow', 'optuna') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
