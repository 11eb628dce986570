"""The tracking tests' stores: an empty sqlite store with MLflow's schema, made once a session
and copied for each test."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sweeps.tracking import SweepTracker


def copy_sqlite(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty sqlite store with MLflow's schema; creating one takes ~6 s, copying it none."""
    path = tmp_path_factory.mktemp("migrated") / "mlflow.db"
    SweepTracker(f"sqlite:///{path}", sweep_name="schema").check()
    return path


@pytest.fixture
def sqlite_uri(migrated_store: Path, tmp_path: Path) -> str:
    """A fresh copy of :func:`migrated_store` for one test."""
    target = tmp_path / "mlflow.db"
    copy_sqlite(migrated_store, target)
    return f"sqlite:///{target}"
