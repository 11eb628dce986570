"""Ray's internals are patched only on the Ray the patches were written and tested against."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

from mixup_cli.main import main
from sweeps.execution import ray_patches
from tests.sweep_helpers import write_spec

ROOT = Path(__file__).resolve().parents[2]


def test_an_untested_ray_is_refused_in_one_line_before_anything_is_written(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ray_patches, "installed_ray", lambda: "2.50.0")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, "refused",
                      search_space={"mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]}})
    assert main(["run", str(spec), "--storage", "res"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "ray 2.50.0 is installed" in err[0] and "2.60" in err[0], err[0]
    assert not (tmp_path / "res" / "refused").exists()
    assert not (tmp_path / "mlflow.db").exists()


def test_the_declared_ray_range_is_the_tested_one_and_the_installed_ray_is_in_it():
    ray_patches.check_ray()  # the installed Ray passes
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = next(d for d in deps if d.startswith("ray[tune]"))
    match = re.fullmatch(r"ray\[tune\]>=(\d+)\.(\d+),<(\d+)\.(\d+)", declared)
    assert match is not None, declared
    major, minor, below_major, below_minor = (int(g) for g in match.groups())
    # one tested minor release, declared as exactly that one
    assert list(ray_patches.TESTED_RAY) == [(major, minor)]
    assert (below_major, below_minor) == (major, minor + 1)


def test_cluster_up_refuses_a_ray_without_token_authentication(tmp_path, monkeypatch):
    import importlib.metadata

    from cluster import local
    from cluster.errors import ClusterError

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "2.51.0" if name == "ray" else real(name))
    try:
        local.up(tmp_path / "cluster", workers=1)
    except ClusterError as err:
        assert "ray 2.51.0 ignores RAY_AUTH_MODE=token" in str(err) and "\n" not in str(err)
    else:
        raise AssertionError("an unauthenticated cluster was started")
    assert not (tmp_path / "cluster").exists()  # refused before anything was written
