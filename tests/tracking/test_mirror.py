"""Fast unit tests of the driver's sink (records, then MLflow, buffered) against a fake tracker,
of the table builder on a known record, and of ASHA's switch-off rule as a pure function."""

from __future__ import annotations

import io
import math
from typing import Any

import pytest

from sweeps.execution.scheduling import may_cut
from sweeps.execution.sink import DriverSink
from sweeps.spec import parse_spec
from sweeps.store import tables
from sweeps.store.records import RecordLog, TrialRecord

SPEC = parse_spec({"name": "mirror", "search": {"algorithm": "grid"},
                   "trial": {"data": {"dim": 64, "n_train": 20, "n_test": 20}, "optim.epochs": 30},
                   "search_space": {"mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]}},
                   "objective": {"metric": "val/acc_rare", "mode": "max"}}, source="mirror")


class FakeTracker:
    """Records what would reach MLflow; ``down`` makes every call fail as an outage does."""

    tracking_uri = "http://fake"

    def __init__(self) -> None:
        self.down = False
        self.writes = 0
        self.runs: dict[str, dict[str, Any]] = {}

    def _call(self) -> None:
        if self.down:
            raise ConnectionError("server down")

    def forget(self, trial_id: str) -> None:
        pass

    def start_trial(self, trial_id: str, *, config: dict[str, Any], tags: dict[str, str]) -> str:
        self._call()
        run = self.runs.setdefault(trial_id, {"steps": [], "status": None})
        run["config"], run["tags"] = config, dict(tags)
        return trial_id

    def set_tags(self, trial_id: str, tags: dict[str, str]) -> None:
        self._call()
        self.runs[trial_id]["tags"].update(tags)

    def log_epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None:
        self._call()
        steps = self.runs[trial_id]["steps"]
        if not steps or epoch > steps[-1]:  # as SweepTracker: a logged step is never repeated
            steps.append(epoch)

    def finish_trial(self, trial_id: str, *, status: str, summary: dict[str, float],
                     error: str | None = None) -> None:
        self._call()
        self.runs[trial_id]["status"] = status

    def ended_trials(self) -> set[str]:
        self._call()
        return {t for t, run in self.runs.items() if run["status"] is not None}

    def write_trials(self, writes: Any) -> dict[str, Exception]:
        failed = {}
        for write in writes:
            try:
                self.write_trial(write.trial_id, start=write.start, epochs=write.epochs,
                                 tags=write.tags, finish=write.finish)
            except Exception as err:
                failed[write.trial_id] = err
        return failed

    def write_trial(self, trial_id: str, *, start: Any = None, epochs: Any = (), tags: Any = None,
                    finish: Any = None) -> None:
        self.writes += 1
        if start is not None:
            self.start_trial(trial_id, config=start[0], tags=start[1])
        for epoch, metrics in epochs:
            self.log_epoch(trial_id, epoch, metrics)
        if tags:
            self.set_tags(trial_id, tags)
        if finish is not None:
            self.finish_trial(trial_id, status=finish[0], summary=finish[1], error=finish[2])


def report(sink: DriverSink, trial_id: str, epoch: int) -> None:
    sink.trial_result(trial_id, {"epoch": epoch, "test/acc_rare": epoch / 100, "node_id": "n1",
                                 "train/loss": 1.0, "junk": "ignored"})


def test_an_outage_loses_nothing_and_the_replay_delivers_each_epoch_once(tmp_path):
    tracker = FakeTracker()
    sink = DriverSink(tmp_path, SPEC, tracker, io.StringIO(), retry_every=0.0)  # type: ignore[arg-type]
    sink.trial_started("t0", {"mixup.alpha": 1.0})
    report(sink, "t0", 10)
    assert sink.drain()
    tracker.down = True
    report(sink, "t0", 20)
    report(sink, "t0", 30)
    assert sink.drain()
    assert sink.unsynced == {"t0"} and tracker.runs["t0"]["steps"] == [10]
    tracker.down = False
    sink.trial_finished("t0", "TERMINATED", None)
    assert sink.flush(timeout=5)
    assert tracker.runs["t0"]["steps"] == [10, 20, 30] and tracker.runs["t0"]["status"] == "TERMINATED"
    assert sorted(RecordLog(tmp_path).trials["t0"].epochs) == [10, 20, 30]


def test_a_driver_killed_with_writes_pending_leaves_nothing_behind_after_resume(tmp_path):
    tracker = FakeTracker()
    first = DriverSink(tmp_path, SPEC, tracker, io.StringIO(),  # type: ignore[arg-type]
                       write_every=3600)  # the writer passes only when drained
    first.trial_started("t2", {"mixup.alpha": 1.0})
    first.trial_started("t3", {"mixup.alpha": 0.0})
    report(first, "t3", 10)
    first.trial_finished("t3", "TERMINATED", None)
    assert first.drain()
    report(first, "t2", 10)
    report(first, "t2", 20)  # then the driver dies: its writer never sends these two
    assert tracker.runs["t2"]["steps"] == [] and tracker.runs["t3"]["status"] == "STOPPED"
    second = DriverSink(tmp_path, SPEC, tracker, io.StringIO(),  # type: ignore[arg-type]
                        write_every=3600)
    second.trial_started("t2", {"mixup.alpha": 1.0})
    report(second, "t2", 30)
    assert second.drain()
    assert tracker.runs["t2"]["steps"] == [10, 20, 30] and second.unsynced == set()
    assert second.replayed == 1  # t2 only: t3 had ended in MLflow


def test_tags_come_from_the_record_and_a_short_trial_is_marked_stopped(tmp_path):
    tracker = FakeTracker()
    sink = DriverSink(tmp_path, SPEC, tracker, io.StringIO(),  # type: ignore[arg-type]
                      write_every=3600)  # the writer passes only when drained
    sink.trial_started("t1", {"mixup.alpha": 0.0})
    report(sink, "t1", 10)  # then Tune stops it (ASHA): TERMINATED before its 30 epochs
    sink.trial_finished("t1", "TERMINATED", None)
    assert sink.drain()
    assert tracker.writes == 1  # start, report and end of a trial between two writer passes
    record = RecordLog(tmp_path).trials["t1"]
    assert record.status == "STOPPED"
    commit = record.provenance["git_commit"] if record.provenance else None
    assert tracker.runs["t1"]["tags"]["mixup_sweeps.git_commit"] == commit
    assert tracker.runs["t1"]["tags"]["mixup_sweeps.node_id"] == "n1"


def test_the_table_builder_gives_best_and_last_metrics_of_a_known_record():
    record = TrialRecord("k", {"mixup.alpha": 1.0}, status="TERMINATED")
    record.epochs = {10: {"test/acc_rare": 0.2}, 20: {"test/acc_rare": 0.9},
                     30: {"test/acc_rare": 0.5}, 40: {"test/acc_rare": math.nan}}
    [row] = tables.trial_rows([record], metric="test/acc_rare", mode="max")
    assert row["best_epoch"] == 20 and row["best/test/acc_rare"] == 0.9
    assert row["epochs"] == 40 and math.isnan(row["last/test/acc_rare"])
    assert row["config/mixup.alpha"] == 1.0
    assert [r["epoch"] for r in tables.epoch_rows([record])] == [10, 20, 30, 40]


@pytest.mark.parametrize(("epoch", "stop_epoch", "max_t", "cut"), [
    (100, 300, 1000, False),  # before the switch-off: never cut
    (300, 300, 1000, False),  # at it: the effect of the switch is not visible yet
    (400, 300, 1000, True),
    (100, None, 1000, True),  # Mixup throughout: ASHA's rule as it is
    (1000, 2000, 1000, True),  # the budget's end: the stop epoch lies beyond it
    (100, 0, 1000, True),  # ERM
])
def test_asha_may_cut_a_trial_only_after_its_switch_off_epoch(epoch, stop_epoch, max_t, cut):
    assert may_cut(epoch=epoch, stop_epoch=stop_epoch, max_t=max_t) is cut
