"""A new sqlite store is a copy of an empty one this MLflow release made, not ~50 migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sweeps.tracking.sqlite_batch import CACHE_ENV, TESTED_REVISIONS, seed_store, store_revision


def test_a_new_store_is_seeded_at_mlflows_revision_with_its_default_experiment_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    uri = f"sqlite:///{tmp_path / 'lab' / 'mlflow.db'}"
    (tmp_path / "lab").mkdir()
    assert seed_store(uri, cwd=tmp_path / "lab")
    assert store_revision(uri) in TESTED_REVISIONS
    assert list((tmp_path / "cache").glob("mlflow-*-empty.db"))  # made once, kept
    client = MlflowClient(tracking_uri=uri)  # MLflow opens it as its own: no migration to run
    default = client.get_experiment("0")
    assert default.artifact_location == str((tmp_path / "lab" / "mlruns" / "0").resolve())
    made = client.create_experiment("x")
    assert client.get_experiment(made).name == "x"
    client.log_metric(client.create_run(made).info.run_id, "m", 1.0)
    assert not seed_store(uri)  # an existing store is never replaced
    assert [e.name for e in client.search_experiments()] == ["x", "Default"]


def test_only_a_sqlite_file_that_does_not_exist_yet_is_seeded(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    assert not seed_store("http://127.0.0.1:5000")
    assert not seed_store(f"sqlite:///{tmp_path / 'missing-folder' / 'mlflow.db'}")
    assert not (tmp_path / "missing-folder").exists()
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"not a store")
    assert not seed_store(f"sqlite:///{taken}") and taken.read_bytes() == b"not a store"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".seed")]  # no leftovers
    with sqlite3.connect(tmp_path / "other.db"):
        pass
    assert not seed_store(f"sqlite:///{tmp_path / 'other.db'}")  # exists, even if empty
