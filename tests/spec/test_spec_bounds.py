"""Bounded before expensive: sizes are refused before any per-point work, in one line."""

from __future__ import annotations

import pytest
import yaml

from mixup_cli.main import main
from sweeps.spec import SpecError, load_spec
from sweeps.spec import loader as spec_loader


def _write(tmp_path, tree: dict | str, name: str = "spec.yaml"):
    path = tmp_path / name
    path.write_text(tree if isinstance(tree, str) else yaml.safe_dump(tree))
    return path


def test_a_grid_of_ten_billion_points_is_refused_before_any_point_is_checked(tmp_path, monkeypatch):
    checked: list[object] = []
    real = spec_loader._Reader.check_point
    monkeypatch.setattr(spec_loader._Reader, "check_point",
                        lambda self, *a, **k: checked.append(a) or real(self, *a, **k))
    space = {key: {"kind": "grid", "values": list(range(1, 101))}
             for key in ("model.width", "optim.epochs", "log_every", "data.n_train", "data.n_test")}
    path = _write(tmp_path, {"name": "huge", "search": {"algorithm": "grid"},
                             "search_space": space})
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert "search.num_samples: 10,000,000,000 trials planned" in str(err.value)
    assert checked == []


def test_a_long_values_list_is_checked_once_per_value_and_a_repeat_is_found(tmp_path, monkeypatch):
    calls = []
    real = spec_loader._Reader.check_point
    monkeypatch.setattr(spec_loader._Reader, "check_point",
                        lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    values = [i / 100 for i in range(20_000)]
    path = _write(tmp_path, {"name": "long", "search": {"algorithm": "grid"},
                             "search_space": {"mixup.alpha": {"kind": "grid", "values": values}}})
    assert len(load_spec(path).search_space["mixup.alpha"].values) == 20_000
    assert len(calls) == 20_000
    path = _write(tmp_path, {"name": "long", "search": {"algorithm": "grid"}, "search_space": {
        "mixup.alpha": {"kind": "grid", "values": [*values, 1]}}})
    with pytest.raises(SpecError, match=r"values\[20000\]: repeats 1.0"):
        load_spec(path)


def test_a_key_given_twice_is_refused_naming_the_key_and_its_line(tmp_path):
    path = _write(tmp_path, "name: dup\nsearch: {algorithm: grid}\nsearch_space:\n"
                            "  mixup.alpha: {kind: grid, values: [1.0]}\n"
                            "  mixup.alpha: {kind: grid, values: [2.0]}\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert "line 5" in str(err.value) and "duplicate key 'mixup.alpha'" in str(err.value)


@pytest.mark.parametrize("key", ["optim.lr", "optim.weight_decay"])
def test_a_learning_rate_that_can_only_diverge_is_refused(tmp_path, key):
    path = _write(tmp_path, {"name": "lr", "trial": {key: 1.0e308}})
    with pytest.raises(SpecError, match=rf"trial\.{key}: must be in .*1000.0\], got 1e\+308"):
        load_spec(path)


def test_reproduce_seeds_are_bounded(capsys):
    assert main(["reproduce", "--seeds", "1000000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seeds: must be in [1, 1024]" in err[0]
