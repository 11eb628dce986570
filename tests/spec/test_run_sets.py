"""``run --set KEY=VALUE``: trial keys and spec sections set from the command line, validated
like the file, kept in ``sweep.json`` (so ``resume`` runs the same spec); bad ones are one line,
exit 2, nothing started."""

from __future__ import annotations

import pytest

from sweeps.errors import SpecError
from sweeps.spec import apply_sets, load_spec
from sweeps.store.layout import read_meta, stored_spec
from sweeps.sweep import Sweep
from tests.sweep_helpers import mixup_sweep, write_spec

GRID = {"mixup.alpha": {"kind": "grid", "values": [0.0, 1.0]}}


def test_sets_reach_trial_keys_nested_or_dotted_and_spec_sections(tmp_path):
    path = write_spec(tmp_path, "sets", search_space=GRID, seeds=[0, 1])
    spec = load_spec(path, {"optim.epochs": 20, "data.dim": 100, "execution.pack": 2,
                            "search.max_concurrent": 3, "seeds": [4, 5, 6]})
    assert spec.base.optim.epochs == 20 and spec.base.data.dim == 100  # dotted / nested in file
    assert spec.base.data.n_train == 60  # the rest of the nested section is kept
    assert spec.pack == 2 and spec.search.max_concurrent == 3 and spec.seeds == (4, 5, 6)
    untouched = load_spec(path)
    assert untouched.base.optim.epochs == 40 and untouched.pack != 2  # the file is not changed


@pytest.mark.parametrize(("sets", "field"), [
    ({"mixup.alpha": 0.5}, "--set mixup.alpha"),          # searched: set it in search_space
    ({"optim.epochs": -3}, "optim.epochs"),                # validated as the file would be
    ({"optim.epoch": 3}, "optim.epoch"),                   # not a key: named
    ({"name": "other"}, "--set name"),                     # not settable (--name exists)
    ({"execution.pack": "lots"}, "execution.pack"),
])
def test_a_bad_set_names_its_key(tmp_path, sets, field):
    path = write_spec(tmp_path, "sets", search_space=GRID)
    with pytest.raises(SpecError) as caught:
        load_spec(path, sets)
    assert field in str(caught.value) and "\n" not in str(caught.value)


def test_apply_sets_leaves_the_tree_it_was_given_alone():
    tree = {"name": "x", "trial": {"optim": {"epochs": 5}}}
    changed = apply_sets(tree, {"optim.epochs": 9}, source="x.yaml")
    assert tree == {"name": "x", "trial": {"optim": {"epochs": 5}}}
    assert changed["trial"] == {"optim": {"epochs": 9}}


def test_run_set_reaches_the_trials_and_sweep_json(tmp_path):
    spec = write_spec(tmp_path, "sets", search_space=GRID, seeds=[0])
    out = mixup_sweep("run", str(spec), "--storage", "res", "--set", "optim.epochs=20",
                      "--set", "log_every=5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    meta = read_meta(tmp_path / "res", "sets")
    assert meta["sets"] == {"optim.epochs": 20, "log_every": 5}
    assert stored_spec(meta).base.optim.epochs == 20  # what resume runs
    _, epochs = Sweep.load("sets", storage=tmp_path / "res").tables()
    reported = {int(e) for e in epochs["epoch"]}
    assert reported and max(reported) == 20 and 5 in reported, sorted(reported)


def test_a_bad_set_on_the_command_line_is_one_line_and_starts_nothing(tmp_path):
    spec = write_spec(tmp_path, "sets", search_space=GRID)
    for flag, field in (("optim.epochs=-1", "optim.epochs"), ("nokey", "--set 'nokey'"),
                        ("mixup.alpha=2", "--set mixup.alpha")):
        out = mixup_sweep("run", str(spec), "--storage", "res", "--set", flag, cwd=tmp_path,
                          timeout=60)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and field in lines[0], out.stderr
    assert not (tmp_path / "res").exists() and not (tmp_path / "mlflow.db").exists()
