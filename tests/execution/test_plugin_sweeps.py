"""The example plugin (examples/plugins) through the whole stack on local Ray: its scheme,
data set and metric train packed, are recorded with the plugin's version, chosen on by `best`;
`resume` refuses a plugin whose code changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from sweeps.store.records import RecordLog
from tests.sweep_helpers import NO_REPORT, mixup_sweep

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugins"


def test_the_example_plugin_sweeps_packed_records_its_version_and_resume_checks_it(tmp_path):
    shutil.copytree(EXAMPLE, tmp_path / "plugins")
    spec = tmp_path / "plugins" / "spec.yaml"
    out = mixup_sweep("run", str(spec), "--storage", "res", NO_REPORT, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "res" / "plugin_example"
    records = RecordLog(folder).trials
    assert len(records) == 3 and all(r.status == "TERMINATED" for r in records.values())
    schemes = {r.config["mixup.label_scheme"] for r in records.values()}
    assert "sigmoid" in schemes
    for record in records.values():
        assert sorted(record.epochs) == [1, 2, 3, 4]
        for metrics in record.epochs.values():  # the plugin metric, the data set's subgroups
            assert 0 <= metrics["val/brier"] <= 2 and 0 <= metrics["test/brier"] <= 2
            assert 0 <= metrics["test/acc_rare"] <= 1
        [plugin] = record.provenance["plugins"]
        assert plugin["name"] == "mixup_ext" and plugin["version"].startswith("sha256:")
    trials = pd.read_parquet(folder / "trials.parquet")
    assert trials["pack"].notna().all() and trials["pack"].nunique() == 1  # one pack of three
    meta = json.loads((folder / "sweep.json").read_text())
    assert meta["provenance"]["plugins"] == [plugin]
    best = mixup_sweep("best", "plugin_example", "--storage", "res", cwd=tmp_path)
    assert best.returncode == 0 and "val/brier" in best.stdout, best.stderr

    plugin_file = tmp_path / "plugins" / "mixup_ext.py"
    plugin_file.write_text(plugin_file.read_text() + "\n# changed after the sweep started\n")
    refused = mixup_sweep("resume", "plugin_example", "--storage", "res", cwd=tmp_path)
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert "plugin 'mixup_ext' changed since the sweep started" in line
    assert "--allow-changed-plugins" in line
    allowed = mixup_sweep("resume", "plugin_example", "--storage", "res",
                          "--allow-changed-plugins", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
