"""No command destroys, strands or mixes a sweep's data: all-or-nothing delete, runs found by the
sweep's id, reads that never replace tables by fewer rows, a corrupt table rebuilt from records.

One real sweep (local Ray, a sqlite store) is run once; each test works on its own copy of it
(the sweep folder and its store side by side, so ``sweep.json`` follows the copied store)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sweeps import UsageError, load_sweep
from sweeps.store import parquet_io
from tests.sweep_helpers import mixup_sweep, write_spec

pytestmark = pytest.mark.slow

ALPHA = {"mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lab")
    spec = write_spec(root, "kept", seeds=[0, 1], search_space=ALPHA)
    out = mixup_sweep("run", str(spec), "--storage", "res", cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    return root


@pytest.fixture
def copy(lab: Path, tmp_path: Path) -> Path:
    shutil.copytree(lab, tmp_path / "lab")
    return tmp_path / "lab"


def active_runs(folder: Path) -> dict[str, str]:
    """run id -> sweep id tag of every active run in the copy's store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, max_results=1000)
    return {r.info.run_id: r.data.tags.get("mixup_sweeps.sweep_id", "") for r in runs}


def test_delete_of_a_folder_that_cannot_be_removed_deletes_nothing(copy, monkeypatch):
    sweep = load_sweep("kept", storage=copy / "res")
    before = active_runs(copy)
    assert len(before) == 3  # the parent and two trials
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **k: (
        False if Path(path) == sweep.directory else real(path, mode, **k)))
    with pytest.raises(UsageError) as err:
        sweep.delete()
    assert "cannot be removed" in str(err.value) and "nothing was deleted" in str(err.value)
    assert active_runs(copy) == before
    assert (sweep.directory / "sweep.json").is_file()


def test_delete_whose_folder_removal_fails_restores_the_runs_and_the_folder(copy, monkeypatch):
    sweep = load_sweep("kept", storage=copy / "res")
    before = active_runs(copy)

    def fail(path: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(shutil, "rmtree", fail)
    with pytest.raises(UsageError) as err:
        sweep.delete()
    assert "3 MLflow runs were restored" in str(err.value)
    assert active_runs(copy) == before
    assert (sweep.directory / "sweep.json").is_file()
    assert [p.name for p in (copy / "res").iterdir()] == ["kept"]


def test_delete_with_the_tracking_store_unreachable_deletes_nothing(copy):
    sweep = load_sweep("kept", storage=copy / "res")
    sweep.meta["tracking_uri"] = "http://127.0.0.1:9"  # discard port: nothing answers
    with pytest.raises(UsageError, match=r"cannot be reached.*nothing was deleted"):
        sweep.delete()
    assert (sweep.directory / "sweep.json").is_file()
    assert len(active_runs(copy)) == 3


def test_two_sweeps_of_one_name_in_two_folders_never_share_or_delete_each_others_runs(copy):
    spec = copy / "kept.yaml"
    refused = mixup_sweep("run", str(spec), "--storage", "other", cwd=copy)
    assert refused.returncode == 2, refused.stderr[-2000:]
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "--allow-same-name" in lines[0], lines
    assert not (copy / "other" / "kept").exists()

    out = mixup_sweep("run", str(spec), "--storage", "other", "--allow-same-name", cwd=copy)
    assert out.returncode == 0, out.stderr[-2000:]
    ids = {name: load_sweep("kept", storage=copy / name).meta["sweep_id"]
           for name in ("res", "other")}
    assert ids["res"] != ids["other"]
    runs = active_runs(copy)
    assert sorted(runs.values()).count(ids["other"]) == 3  # its own parent and two trials
    for storage in ("res", "other"):  # MLflow's view of each is its own two trials
        trials, _ = load_sweep("kept", storage=copy / storage).tables("mlflow")
        assert len(trials) == 2
    assert mixup_sweep("delete", "kept", "--storage", "res", "--yes", cwd=copy).returncode == 0
    assert sorted(active_runs(copy).values()) == [ids["other"]] * 3


def test_a_read_never_replaces_tables_by_fewer_rows(copy, capsys):
    folder = copy / "res" / "kept"
    trials_rows = parquet_io.row_count(folder / parquet_io.TRIALS_FILE)
    epochs_rows = parquet_io.row_count(folder / parquet_io.EPOCHS_FILE)
    (folder / "records.jsonl").write_text("")  # emptied, and newer than the tables
    ranked = load_sweep("kept", storage=copy / "res").best(top=None)
    assert len(ranked) == trials_rows == 2
    assert parquet_io.row_count(folder / parquet_io.TRIALS_FILE) == trials_rows
    assert parquet_io.row_count(folder / parquet_io.EPOCHS_FILE) == epochs_rows
    warning = [x for x in capsys.readouterr().err.splitlines() if x.startswith("warning:")]
    assert len(warning) == 1 and "records.jsonl" in warning[0] and "kept" in warning[0]


def test_a_corrupt_table_is_rebuilt_from_intact_records(copy, capsys):
    folder = copy / "res" / "kept"
    (folder / parquet_io.TRIALS_FILE).write_bytes(b"not parquet at all")  # newer than records
    ranked = load_sweep("kept", storage=copy / "res").best(top=None)
    assert len(ranked) == 2
    assert parquet_io.row_count(folder / parquet_io.TRIALS_FILE) == 2  # rewritten, readable
    assert "rebuilt from records.jsonl" in capsys.readouterr().err


CREATE_STORE = """
import sys
from sweeps.tracking import SweepTracker
tracker = SweepTracker(sys.argv[1], sweep_name=sys.argv[2])
tracker.check()
tracker.ensure_experiment()
print("OK")
"""


def test_drivers_that_first_open_one_new_sqlite_store_at_once_all_succeed(tmp_path):
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [subprocess.Popen([sys.executable, "-c", CREATE_STORE, uri, f"s{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(6)]
    results = [p.communicate(timeout=180) for p in procs]
    failed = [err[-500:] for p, (_, err) in zip(procs, results, strict=True) if p.returncode]
    assert failed == []
    assert all(out.strip().endswith("OK") for out, _ in results)


def test_list_names_an_unreadable_sweep_and_lists_the_rest(copy):
    broken = copy / "res" / "broken"
    broken.mkdir()
    (broken / "sweep.json").write_text("{ not json")
    out = mixup_sweep("list", "--storage", "res", cwd=copy)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split()[1] for line in out.stdout.splitlines()[1:]}
    assert rows == {"kept": "finished", "broken": "unreadable"}
    assert out.stderr.strip().splitlines() == [
        line for line in out.stderr.strip().splitlines() if line.startswith("broken: unreadable")]


def test_wrong_types_in_sweep_json_are_one_line_naming_the_field(copy):
    import json

    meta_path = copy / "res" / "kept" / "sweep.json"
    meta = json.loads(meta_path.read_text())
    meta["seeds"] = "0, 1"
    meta_path.write_text(json.dumps(meta))
    out = mixup_sweep("best", "kept", "--storage", "res", cwd=copy)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "seeds must be list or null, got str" in lines[0], lines


@pytest.mark.parametrize("argv, says", [
    (["ui", "--port", "70000"], "a port is 1-65535"),
    (["ui", "--port", "0"], "a port is 1-65535"),
    (["report", "kept", "--storage", "res", "--no-mlflow", "--out", "/proc/r"],
     "--out /proc/r: the report cannot be written there"),
])
def test_bad_places_and_ports_are_one_line(copy, argv, says):
    out = mixup_sweep(*argv, cwd=copy)
    assert out.returncode == 2, out.stderr[-1000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], lines


def test_a_sweep_name_that_is_a_file_is_one_line(copy):
    (copy / "res" / "clash").write_text("a file")
    out = mixup_sweep("run", str(copy / "kept.yaml"), "--storage", "res", "--name", "clash",
                      cwd=copy)
    assert out.returncode == 2, out.stderr[-1000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "is a file, not a sweep folder" in lines[0], lines
    assert (copy / "res" / "clash").read_text() == "a file"
