"""Records describe themselves: MLflow tags carry the provenance written when the sweep ran,
never that of the checkout that replays them."""

from __future__ import annotations

from sweeps.execution.driver import sync
from sweeps.store import provenance
from sweeps.store.records import RecordLog, TrialRecord
from tests.sweep_helpers import sweep_runs, write_finished_sweep, write_spec

RUN = {"git_commit": "1111111111111111111111111111111111111111", "host": "lab-node-7",
       "versions": {"torch": "2.14.1", "mixup-sweeps": "0.1.0"}}


def test_sync_tags_runs_with_the_commit_the_sweep_ran_with(tmp_path, monkeypatch):
    spec = write_spec(tmp_path, "provenant", search_space={})
    trial = TrialRecord("t0", {"mixup.alpha": 1.0}, status="TERMINATED", provenance=RUN,
                        epochs={10: {"epoch": 10, "val/acc_rare": 0.5}})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_finished_sweep(tmp_path / "res", "provenant", [trial], spec_path=str(spec),
                         spec_text=spec.read_text(), tracking_uri=uri, provenance=RUN)
    monkeypatch.setattr(provenance, "git_commit", lambda: "2" * 40)  # another checkout now
    assert sync("provenant", storage=tmp_path / "res") == 1

    parent, children = sweep_runs(uri, "provenant")
    for run in (parent, *children):
        assert run.data.tags["mixup_sweeps.git_commit"] == RUN["git_commit"]
        assert run.data.tags["mixup_sweeps.host"] == "lab-node-7"
    assert children[0].data.tags["mixup_sweeps.version.torch"] == "2.14.1"


def test_a_start_record_carries_its_provenance_through_a_reload(tmp_path):
    log = RecordLog(tmp_path)
    log.trial_started("t0", {}, provenance=provenance.collect())
    log.close()
    record = RecordLog(tmp_path).trials["t0"]
    assert record.provenance is not None
    assert set(record.provenance) == {"git_commit", "versions", "host", "plugins"}
    assert provenance.as_tags(record.provenance)["mixup_sweeps.version.ray"] != "absent"


def test_an_old_record_without_provenance_is_tagged_unknown_not_with_todays_commit():
    assert provenance.as_tags(None)["mixup_sweeps.git_commit"] == "unknown"
