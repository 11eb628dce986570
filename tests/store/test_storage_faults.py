"""Storage faults as they happen for real: a sweep's storage on a 1 MB tmpfs fills up mid-sweep,
is then mounted read-only, then given room again. Every command says so in one line (exit 2)
or answers from what is there; nothing recorded is lost, and ``resume`` finishes the sweep.

Mounting a tmpfs needs root (or CAP_SYS_ADMIN), as in the project's CI container."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sweeps.store.records import RecordLog
from tests.sweep_helpers import mixup_sweep, sweep_runs, write_spec

pytestmark = pytest.mark.slow

EPOCHS = 3000
TRIAL = {"data": {"dim": 200, "n_train": 60, "n_test": 200}, "optim.epochs": EPOCHS,
         "log_every": 10}
ALPHA = {"mixup.alpha": {"kind": "grid", "values": [0.0, 0.5, 1.0, 2.0]}}


class Disk:
    """A tmpfs mounted at ``path``: ``resize`` and ``read_only`` act on the live mount."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _mount(self, *options: str) -> None:
        subprocess.run(["mount", "-o", ",".join(["remount", *options]), str(self.path)],
                       check=True, capture_output=True)

    def resize(self, size: str) -> None:
        self._mount("rw", f"size={size}")

    def read_only(self) -> None:
        self._mount("ro")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Disk]:
    path = tmp_path / "disk"
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"these tests mount a tmpfs, which needs root: {mounted.stderr.strip()}")
    try:
        yield Disk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def one_error_line(out: subprocess.CompletedProcess[str], command: str) -> str:
    """The command's one error line (exit 2, no traceback); returns it."""
    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("mixup-sweep ")]
    assert len(errors) == 1 and errors[0].startswith(f"mixup-sweep {command}: error: "), out.stderr
    return errors[0]


def test_a_full_then_read_only_disk_loses_nothing_and_resume_finishes_the_sweep(
        tmp_path: Path, small_disk: Disk) -> None:
    spec = write_spec(tmp_path, "full", trial=TRIAL, search_space=ALPHA)
    storage = str(small_disk.path / "res")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # the tracking store is on another disk

    # 1. the disk fills up mid-sweep: one line, the parent run FAILED, the records readable
    out = mixup_sweep("run", str(spec), "--storage", storage, "--tracking-uri", uri,
                      cwd=tmp_path)
    line = one_error_line(out, "run")
    assert "the storage is full" in line and "mixup-sweep resume full" in line, line
    parent, _ = sweep_runs(uri, "full")
    assert parent.info.status == "FAILED"
    folder = small_disk.path / "res" / "full"
    log = RecordLog(folder)
    recorded = {t: dict(r.epochs) for t, r in log.trials.items()}
    assert recorded and sum(map(len, recorded.values())) > 10
    lines = (folder / "records.jsonl").read_bytes().splitlines()
    assert all(json.loads(x) for x in lines[:-1])  # at most the last line is cut short

    # 2. while full: reads answer, writers say so in one line
    assert mixup_sweep("best", "full", "--storage", storage, cwd=tmp_path).returncode == 0
    one_error_line(mixup_sweep("resume", "full", "--storage", storage, cwd=tmp_path), "resume")

    # 3. read-only: `list` says so; resume, sync and delete refuse in one line, touch nothing
    small_disk.read_only()
    before = (folder / "records.jsonl").read_bytes()
    listed = mixup_sweep("list", "--storage", storage, cwd=tmp_path)
    assert listed.returncode == 0 and "interrupted, read-only" in listed.stdout, listed.stdout
    status = mixup_sweep("status", "full", "--storage", storage, cwd=tmp_path)
    assert "read-only" in status.stdout and "cannot be written" in status.stdout, status.stdout
    for command in ("resume", "sync"):
        line = one_error_line(mixup_sweep(command, "full", "--storage", storage, cwd=tmp_path),
                              command)
        assert "read-only" in line, line
    one_error_line(mixup_sweep("delete", "full", "--yes", "--storage", storage, cwd=tmp_path),
                   "delete")
    assert mixup_sweep("best", "full", "--storage", storage, cwd=tmp_path).returncode == 0
    assert (folder / "records.jsonl").read_bytes() == before
    assert sweep_runs(uri, "full")[0].info.status == "FAILED"

    # 4. room again: resume finishes every trial, the epochs recorded before are kept as they were
    small_disk.resize("32m")
    out = mixup_sweep("resume", "full", "--storage", storage, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    after = RecordLog(folder).trials
    assert set(recorded) <= set(after) and len(after) == 4
    for trial_id, record in after.items():
        assert record.status == "TERMINATED", (trial_id, record.status, record.error)
        assert sorted(record.epochs) == list(range(10, EPOCHS + 1, 10)), trial_id
        for epoch, metrics in recorded.get(trial_id, {}).items():  # kept, or re-run alike
            assert same(record.epochs[epoch], metrics), (trial_id, epoch)
    assert sweep_runs(uri, "full")[0].info.status == "FINISHED"
    assert (folder / "trials.parquet").is_file()


def same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)
