"""``best`` that cannot mislead: every searched key shown, one spelling of null per format,
``--where`` filters, ``--format table|json|csv``, and ``export`` to CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.sweep_helpers import mixup_sweep, write_spec

GRID = {"mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]},
        "mixup.label_scheme": {"kind": "grid", "values": ["same", "power"]},
        "mixup.stop_epoch": {"kind": "grid", "values": [20, None]}}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("best")
    spec = write_spec(folder, "grid", search_space=GRID, seeds=[0, 1])
    out = mixup_sweep("run", str(spec), "--storage", "res", cwd=folder)
    assert out.returncode == 0, out.stderr
    return folder


def best(folder: Path, *args: str) -> list[dict]:
    out = mixup_sweep("best", "grid", "--storage", "res", "--top", "10", *args, cwd=folder)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_table_shows_every_searched_key_and_writes_never_for_no_switch_off(sweep):
    out = mixup_sweep("best", "grid", "--storage", "res", "--top", "1", cwd=sweep)
    assert out.returncode == 0, out.stderr
    header = next(line for line in out.stdout.splitlines() if line.startswith("#"))
    for key in GRID:  # shown although one row cannot vary
        assert key in header, header
    out = mixup_sweep("best", "grid", "--storage", "res", "--top", "10", cwd=sweep)
    rows = [line.split() for line in out.stdout.splitlines() if line[:1].isdigit()]
    assert len(rows) == 5
    stops = {row[-1] if row[-1] in ("never", "20") else row[-4] for row in rows}
    assert stops == {"never", "20"}, out.stdout  # (the merged trial ends with "4 grid points")
    assert "None" not in out.stdout and "<NA>" not in out.stdout and "null" not in out.stdout


def test_where_filters_on_config_values_and_json_writes_null(sweep):
    rows = best(sweep, "--json")
    assert len(rows) == 5  # 8 grid points, α = 0 merges 4 of them into one trial
    never = best(sweep, "--format", "json", "--where", "mixup.stop_epoch=never")
    assert len(never) == 3 and all(r["config"]["mixup.stop_epoch"] is None or r["stands_for"] > 1
                                   for r in never)  # the α = 0 trial stands for both stops
    # the α = 0 trial stands for stop 20 too, so it matches either value
    twenty = best(sweep, "--format", "json", "--where", "mixup.stop_epoch=20")
    assert {r["config"]["mixup.alpha"] for r in twenty} == {0.0, 1.0}
    both = best(sweep, "--format", "json", "--where", "mixup.label_scheme=power",
                "--where", "mixup.alpha=1.0")
    assert len(both) == 2 and all(r["config"]["mixup.label_scheme"] == "power" for r in both)
    bad = mixup_sweep("best", "grid", "--storage", "res", "--where", "mixup.nope=1", cwd=sweep)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--where mixup.nope" in bad.stderr
    none = mixup_sweep("best", "grid", "--storage", "res", "--where", "mixup.alpha=7", cwd=sweep)
    assert none.returncode == 2 and "no trial matches" in none.stderr


def test_csv_rows_agree_with_json_and_export_writes_csv(sweep):
    rows = best(sweep, "--json")
    out = mixup_sweep("best", "grid", "--storage", "res", "--top", "10", "--format", "csv",
                      cwd=sweep)
    assert out.returncode == 0, out.stderr
    table = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["trial_id"] for r in table] == [r["trial_id"] for r in rows]
    assert [float(r["value"]) for r in table] == pytest.approx([r["value"] for r in rows])
    assert {r["config/mixup.stop_epoch"] for r in table} == {"", "20"}  # empty cell: null
    out = mixup_sweep("export", "grid", "--storage", "res", "--out", "out/trials.csv", cwd=sweep)
    assert out.returncode == 0, out.stderr
    trials = pd.read_csv(sweep / "out" / "trials.csv")
    epochs = pd.read_csv(sweep / "out" / "trials.epochs.csv")
    assert len(trials) == 5 and len(epochs) == 5 * 4
    parquet = pd.read_parquet(sweep / "res" / "grid" / "trials.parquet")
    assert sorted(trials["trial_id"]) == sorted(parquet["trial_id"])
    bad = mixup_sweep("export", "grid", "--storage", "res", "--out", "x.txt", cwd=sweep)
    assert bad.returncode == 2 and ".parquet or .csv" in bad.stderr


def test_never_is_a_group_of_its_own_and_where_takes_the_cli_spellings_in_python(sweep):
    from sweeps.sweep import Sweep

    handle = Sweep.load("grid", storage=sweep / "res")
    ranked = handle.best(top=None)
    stop = ranked["config/mixup.stop_epoch"]
    assert list(stop.cat.categories) == [20, "never"] and stop.cat.ordered  # α = 0 ran at stop 20
    means = ranked.groupby("config/mixup.stop_epoch", observed=True)["value"].mean()
    assert "never" in means.index and means.notna().all()  # the group a NaN would have dropped
    assert list(means.index) == sorted(means.index, key=lambda v: (v == "never", v))  # never last
    for spelling in ("never", "null", None):
        never = handle.best(top=None, where={"mixup.stop_epoch": spelling})
        assert len(never) == 3, spelling  # as the CLI's --where mixup.stop_epoch=never
    assert len(handle.best(top=None, where={"mixup.alpha": "1.0"})) == \
        len(handle.best(top=None, where={"mixup.alpha": 1.0})) == 4
