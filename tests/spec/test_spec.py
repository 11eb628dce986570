"""Tests for sweeps.spec: valid specs load and plan; every bad input is one SpecError line."""

from __future__ import annotations

import copy
import math
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mixup_core.config import TrialConfig, flat_keys
from sweeps.spec import (
    SMOKE_EPOCHS,
    Dimension,
    SpecError,
    SweepSpec,
    format_plan,
    load_spec,
    parse_spec,
)

SPECS = Path(__file__).resolve().parents[2] / "sweeps" / "specs"
TINY = SPECS / "tiny_demo.yaml"


def tiny_tree() -> dict[str, Any]:
    """A fresh copy of tiny_demo's raw YAML tree, for tests to mutate."""
    tree = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    assert isinstance(tree, dict)
    return tree


def parse(tree: object) -> SweepSpec:
    return parse_spec(tree, source="x.yaml")


def error_of(tree: object) -> str:
    with pytest.raises(SpecError) as info:
        parse(tree)
    return str(info.value)


# --- valid specs ---------------------------------------------------------------------------------


def test_tiny_demo_loads_as_a_grid_of_two_trials_with_three_seeds() -> None:
    spec = load_spec(TINY)
    assert spec.name == "tiny_demo"  # the paper's task at its defaults: where the effect shows
    assert spec.base.optim.epochs == 1000 and spec.base.data.dim == 2000 and spec.base.data.n_train == 200
    assert spec.search_space == {"mixup.alpha": Dimension("grid", values=(0.0, 1.0))}
    assert spec.search.algorithm == "grid" and spec.search.num_samples == 1
    assert spec.scheduler.kind == "fifo" and spec.seeds == (0, 1, 2) and spec.pack == "auto"
    assert spec.grid_points() == [{"mixup.alpha": 0.0}, {"mixup.alpha": 1.0}]
    assert spec.trial_count() == 2


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_checked_in_spec_starts_with_its_launch_command_and_loads(path: Path) -> None:
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith(f"# Launch: mixup-sweep run sweeps/specs/{path.name}")
    spec = load_spec(path)
    assert spec.shrunk().base.optim.epochs <= max(SMOKE_EPOCHS, spec.smoke.get("optim.epochs", 0))


def test_plan_lists_every_grid_trial_and_only_the_changed_base_keys() -> None:
    plan = format_plan(load_spec(TINY))
    assert "tiny_demo" in plan and "Trials: 2" in plan
    assert "1. mixup.alpha=0.0" in plan and "2. mixup.alpha=1.0" in plan
    assert "log_every = 50" in plan and "optim.epochs = " not in plan  # 1000 is the default
    assert "model.width" not in plan  # left at its default


def test_the_mutation_seed_tree_with_every_kind_is_itself_valid() -> None:
    assert parse(_every_kind_tree()).trial_count() == 2 * 2


def test_every_dimension_kind_parses_with_random_search_and_asha() -> None:
    tree = tiny_tree()
    tree["trial"]["optim.epochs"] = 1000
    tree["search_space"] = {
        "mixup.alpha": {"kind": "choice", "values": [0, 0.5, 1]},
        "mixup.label_scheme": {"kind": "grid", "values": ["same", "independent"]},
        "optim.lr": {"kind": "loguniform", "low": 0.01, "high": 1.0},
        "model.width": {"kind": "randint", "low": 5, "high": 20},
        "mixup.stop_epoch": {"kind": "quniform", "low": 100, "high": 900, "q": 100},
        "data.rho": {"kind": "uniform", "low": 0.05, "high": 0.2},
    }
    tree["search"] = {"algorithm": "random", "num_samples": 3}
    tree["scheduler"] = {"kind": "asha", "grace_period": 100, "metric": "val/acc_rare"}
    spec = parse(tree)
    assert spec.search_space["mixup.alpha"].values == (0.0, 0.5, 1.0)  # as the config stores them
    assert spec.trial_count() == 3 * 2
    assert spec.scheduler.max_t == 1000 and spec.scheduler.reduction_factor == 3
    plan = format_plan(spec)
    assert "randint [5, 20)" in plan and "quniform [100, 900] step 100" in plan


def test_nested_sections_and_dotted_keys_can_be_mixed_in_trial() -> None:
    tree = tiny_tree()
    tree["trial"] = {"data": {"dim": 300}, "data.rho": 0.2, "mixup": {"label_scheme": "independent"}}
    base = parse(tree).base
    assert (base.data.dim, base.data.rho, base.mixup.label_scheme) == (300, 0.2, "independent")


def test_optuna_counts_num_samples_and_missing_sections_take_defaults() -> None:
    spec = parse({"name": "bare"})
    assert spec.base == TrialConfig()
    assert spec.search.algorithm == "optuna" and spec.trial_count() == 10
    assert spec.objective.metric == "val/acc_rare" and spec.objective.mode == "max"
    assert spec.seeds == (0,) and spec.grid_points() == [{}]
    assert "Grid trials" not in format_plan(spec)


# --- invalid specs: each names the key path -------------------------------------------------------


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets tree[a][b]... (path "a/b/...") to value, creating sections."""
    *parents, last = path.split("/")

    def mutate(tree: dict[str, Any]) -> None:
        node = tree
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return mutate


def _space(algorithm: str, **dims: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(tree: dict[str, Any]) -> None:
        tree["search"] = {"algorithm": algorithm}
        tree["search_space"] = {key.replace("__", "."): dim for key, dim in dims.items()}

    return mutate


LR = {"kind": "loguniform", "low": 0.1, "high": 1.0}
BAD_SPECS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "unknown top-level key": (_set("serch", {}), "x.yaml: serch: unknown key (did you mean 'search'?)"),
    "unknown trial key": (_set("trial/data.rhoo", 0.1), "trial.data.rhoo: not a trial key (did you mean"),
    "alpha below zero in choice values": (
        _space("optuna", mixup__alpha={"kind": "choice", "values": [0.5, -1.0]}),
        "search_space.mixup.alpha.values[1]: gives an invalid trial config (mixup.alpha: must be >="),
    "low not below high": (_space("optuna", optim__lr={**LR, "low": 2.0}), "search_space.optim.lr.low"),
    "unknown label scheme in values": (
        _space("random", mixup__label_scheme={"kind": "grid", "values": ["same", "nope"]}),
        "search_space.mixup.label_scheme.values[1]: gives an invalid trial config"),
    "grid kind with optuna": (
        _space("optuna", mixup__alpha={"kind": "grid", "values": [0.0]}),
        "search_space.mixup.alpha.kind: grid is not allowed with search.algorithm optuna; use kind choice"),
    "non-grid kind with algorithm grid": (_space("grid", optim__lr=LR), "search_space.optim.lr.kind"),
    "unknown metric": (_set("objective/metric", "test/acc_rar"), "objective.metric: must be one of"),
    "unknown mode": (_set("objective/mode", "maximise"), "objective.mode: must be one of ['max', 'min']"),
    "duplicate seeds": (_set("seeds", [0, 1, 0]), "seeds[2]: repeats seed 0"),
    "negative seed": (_set("seeds", [-1]), "seeds[0]: must be >= 0"),
    "seed in search space": (
        _space("random", seed={"kind": "choice", "values": [0, 1]}), "search_space.seed: seeds run inside"),
    "seed in trial": (_set("trial/seed", 3), "trial.seed: seeds run inside"),
    "loguniform from zero": (_space("optuna", optim__lr={**LR, "low": 0}), "search_space.optim.lr.low"),
    "uniform over an integer key": (
        _space("optuna", model__width={"kind": "uniform", "low": 5, "high": 20}),
        "search_space.model.width.kind: model.width is an integer"),
    "quniform bound off the step": (
        _space("optuna", mixup__stop_epoch={"kind": "quniform", "low": 150, "high": 900, "q": 100}),
        "search_space.mixup.stop_epoch.low: must be a multiple of q"),
    "range end outside the config's range": (
        _space("optuna", data__rho={"kind": "uniform", "low": 0.5, "high": 1.5}),
        "search_space.data.rho.high: gives an invalid trial config (data.rho"),
    "dimension field of another kind": (
        _space("optuna", optim__lr={**LR, "values": [1]}), "search_space.optim.lr.values: unknown key"),
    "grid combination that clashes": (
        _space("grid", data__num_classes={"kind": "grid", "values": [2, 90]},
               data__dim={"kind": "grid", "values": [200, 100]}),
        "search_space (grid trial 4): gives an invalid trial config (data.dim"),
    "empty values": (_space("optuna", mixup__alpha={"kind": "choice", "values": []}),
                     "search_space.mixup.alpha.values: expected a non-empty list"),
    "asha metric unlike the objective's": (
        _set("scheduler", {"kind": "asha", "metric": "test/acc"}),
        "scheduler.metric: must equal objective.metric"),
    "asha max_t below grace_period": (
        _set("scheduler", {"kind": "asha", "grace_period": 50, "max_t": 10}), "scheduler.max_t: must be >="),
    "asha reduction_factor of one": (
        _set("scheduler", {"kind": "asha", "reduction_factor": 1}),
        "scheduler.reduction_factor: must be > 1"),
    "asha setting on fifo": (
        _set("scheduler/grace_period", 5),
        "scheduler.grace_period: only used by kind asha"),
    "zero cpus": (_set("resources/cpu", 0), "resources.cpu: must be > 0"),
    "boolean num_samples": (_set("search/num_samples", True), "search.num_samples: expected an integer"),
    "float max_concurrent": (
        _set("search/max_concurrent", 2.0),
        "search.max_concurrent: expected an integer"),
    "integer too large for any float": (_set("trial/optim.lr", 10**400), "trial.optim.lr: integer too large"),
    "dimension without a kind": (_space("optuna", optim__lr={"low": 1, "high": 2}),
                                 "search_space.optim.lr.kind: required"),
    "bad name": (_set("name", "my sweep"), "name: use letters, digits"),
    "trial key given twice": (_set("trial/data.dim", 300), "trial.data.dim: given twice"),
    "unknown smoke key": (_set("smoke", {"optim.epoch": 5}), "smoke.optim.epoch: not a trial key"),
    "invalid smoke value": (_set("smoke", {"optim.epochs": 0}), "smoke.optim.epochs: must be >= 1"),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_an_invalid_spec_raises_one_line_naming_the_key(case: str) -> None:
    mutate, expected = BAD_SPECS[case]
    tree = tiny_tree()
    mutate(tree)
    message = error_of(tree)
    assert expected in message
    assert message.startswith("x.yaml: ") and len(message.splitlines()) == 1


def test_a_missing_name_is_reported_as_required() -> None:
    tree = tiny_tree()
    del tree["name"]
    assert error_of(tree) == "x.yaml: name: required"


def test_a_bad_metric_message_lists_the_valid_names_with_a_suggestion() -> None:
    message = error_of({"name": "x", "objective": {"metric": "test/acc_rar"}})
    assert "'test/acc_rare_std'" in message and "'train/loss'" in message
    assert "did you mean 'test/acc_rare'?" in message


def test_a_key_with_a_newline_still_gives_a_one_line_message() -> None:
    message = error_of({"name": "x", "bad\nkey": 1})
    assert len(message.splitlines()) == 1 and "bad\\nkey" in message


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: demo\nsearch: {algorithm: [grid\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"broken\.yaml: YAML syntax error at line \d+, column \d+"):
        load_spec(path)


def test_a_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nowhere\.yaml: cannot read the file"):
        load_spec(tmp_path / "nowhere.yaml")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "", "42\n"])
def test_a_top_level_that_is_not_a_mapping_is_a_spec_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "flat.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match=r"flat\.yaml: expected a mapping at the top level"):
        load_spec(path)


@pytest.mark.parametrize("text", [
    "name: x\ntrial: &a {data: *a}\n",  # a self-referencing alias
    "name: x\nseeds: " + "[" * 5000 + "]" * 5000 + "\n",  # deeper than PyYAML's recursion
    "name: x\ndescription: 2001-13-01\n",  # PyYAML raises ValueError for the impossible date
    "name: x\nseeds: [" + "9" * 5000 + "]\n",  # past Python's int-to-str digit limit
    "name: !!python/object:os.system x\n",  # unsafe tags are refused by safe_load
])
def test_pathological_yaml_is_a_spec_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert len(str(info.value).splitlines()) == 1


def test_spec_errors_survive_pickling() -> None:
    err = SpecError("x.yaml", "seeds", "must be a list")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) == "x.yaml: seeds: must be a list" and again.key == "seeds"


# --- derived specs -------------------------------------------------------------------------------


def _big_tree(smoke: dict[str, Any] | None = None) -> dict[str, Any]:
    tree = tiny_tree()
    tree["trial"]["optim.epochs"] = 1000
    tree["search"] = {"algorithm": "random", "num_samples": 5}
    tree["search_space"]["mixup.alpha"]["values"] = [0.0, 0.5, 1.0]
    tree["scheduler"] = {"kind": "asha", "grace_period": 100}
    tree["seeds"] = [3, 1, 2]
    if smoke is not None:
        tree["smoke"] = smoke
    return tree


def test_shrunk_caps_epochs_samples_seeds_grid_values_and_asha() -> None:
    spec = parse(_big_tree(smoke={"data.n_train": 30}))
    small = spec.shrunk()
    assert small.base.optim.epochs == SMOKE_EPOCHS and small.base.data.n_train == 30
    assert small.search.num_samples == 2 and small.seeds == (3,)
    assert small.search_space["mixup.alpha"].values == (0.0, 0.5)
    assert (small.scheduler.max_t, small.scheduler.grace_period) == (SMOKE_EPOCHS, SMOKE_EPOCHS)
    assert small.trial_count() == 2 * 2
    assert spec.base.optim.epochs == 1000 and spec.trial_count() == 5 * 3  # the original is untouched
    assert small.shrunk() == small


def test_shrunk_keeps_the_epochs_that_smoke_sets() -> None:
    small = parse(_big_tree(smoke={"optim": {"epochs": 50}})).shrunk()
    assert small.base.optim.epochs == 50 and small.scheduler.max_t == 50


def test_with_overrides_changes_the_budget_and_checks_it() -> None:
    spec = load_spec(TINY).with_overrides(num_samples=3, max_concurrent=4)
    assert spec.trial_count() == 3 * 2 and spec.search.max_concurrent == 4
    with pytest.raises(SpecError, match=r"search\.num_samples: must be >= 1"):
        spec.with_overrides(num_samples=0)


def test_loading_a_spec_imports_none_of_ray_optuna_or_mlflow() -> None:
    code = ("import sys, sweeps.spec as s; s.load_spec(sys.argv[1]); "
            "print(sorted(m for m in ('ray', 'optuna', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(TINY)], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# --- property: malformed input never escapes as another exception ---------------------------------

_WORDS = [*yaml.safe_load(TINY.read_text(encoding="utf-8")), "kind", "values", "low", "high", "q",
          "algorithm", "num_samples", "metric", "mode", "grace_period", "max_t", "cpu", "gpu",
          *flat_keys(), "data", "mixup", "optim", "choice", "grid", "uniform", "loguniform",
          "quniform", "randint", "asha", "fifo", "optuna", "random", "val/acc_rare", "max", "same"]
_keys = st.sampled_from(_WORDS) | st.text(max_size=6) | st.integers() | st.booleans() | st.none()
_EDGES = [10**400, -(10**400), math.nan, math.inf, -math.inf, 0, -1, 0.5, 1e-300, "", []]
_scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
            | st.sampled_from(_WORDS) | st.sampled_from(_EDGES) | st.dates() | st.binary(max_size=3))
_trees = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=20)


def _every_kind_tree() -> dict[str, Any]:
    """tiny_demo with every dimension kind, ASHA and smoke: more for mutations to break."""
    tree = tiny_tree()
    tree["search_space"] = {
        "mixup.alpha": {"kind": "choice", "values": [0.0, 1.0]},
        "mixup.label_scheme": {"kind": "grid", "values": ["same", "independent"]},
        "optim.lr": {"kind": "loguniform", "low": 0.01, "high": 1.0},
        "model.width": {"kind": "randint", "low": 5, "high": 20},
        "mixup.stop_epoch": {"kind": "quniform", "low": 10, "high": 50, "q": 10},
        "data.rho": {"kind": "uniform", "low": 0.05, "high": 0.2},
    }
    tree["search"] = {"algorithm": "random", "num_samples": 2, "max_concurrent": 1, "seed": 0}
    tree["scheduler"] = {"kind": "asha", "grace_period": 10, "max_t": 60, "reduction_factor": 2,
                         "metric": "val/acc_rare", "mode": "max"}
    tree["smoke"] = {"optim": {"epochs": 10}}
    return tree


def _assert_spec_or_one_line_error(tree: object) -> None:
    try:
        spec = parse(tree)
    except SpecError as err:
        assert str(err).startswith("x.yaml: ") and len(str(err).splitlines()) == 1
    else:  # whatever parses must also plan and shrink
        format_plan(spec)
        format_plan(spec.shrunk())


def _containers(node: object, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, (dict, list)):
        yield path
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            yield from _containers(child, (*path, key))


@settings(max_examples=300, deadline=None)
@given(_trees)
def test_random_trees_give_a_spec_or_a_one_line_spec_error(tree: object) -> None:
    _assert_spec_or_one_line_error(tree)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_tiny_demo_gives_a_spec_or_a_one_line_spec_error(data: st.DataObject) -> None:
    tree: Any = data.draw(st.sampled_from([tiny_tree, _every_kind_tree]))()
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(list(_containers(tree))))
        node = tree
        for key in path:
            node = node[key]
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        action = data.draw(st.sampled_from(["delete", "replace", "insert"]))
        if action == "insert" or not keys:
            new_key = data.draw(_keys) if isinstance(node, dict) else len(node)
            # Copies: later mutations must not change objects Hypothesis may hand out again.
            if isinstance(node, dict):
                node[new_key] = copy.deepcopy(data.draw(_trees))
            else:
                node.append(copy.deepcopy(data.draw(_trees)))
        elif action == "delete":
            del node[data.draw(st.sampled_from(keys))]
        else:
            node[data.draw(st.sampled_from(keys))] = copy.deepcopy(data.draw(_trees))
    _assert_spec_or_one_line_error(copy.deepcopy(tree))


def _leaves(node: object, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if not isinstance(node, (dict, list)):
        yield path
        return
    for key, child in node.items() if isinstance(node, dict) else enumerate(node):
        yield from _leaves(child, (*path, key))


def test_replacing_any_single_value_with_an_odd_one_gives_a_spec_or_a_spec_error() -> None:
    odd = [10**400, math.nan, True, {"x": 1}, [[]]]
    for path in _leaves(_every_kind_tree()):
        for value in odd:
            tree = _every_kind_tree()
            node = tree
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            _assert_spec_or_one_line_error(tree)


_yaml_bits = st.sampled_from([
    "name: demo\n", "trial:\n", "  data.rho: ", "search_space:\n", "  mixup.alpha: ", "{kind: grid, ",
    "values: [0, 1]}", "seeds: ", "[", "]", "{", "}", ":", ",", "-", "&a ", "*a", "!!binary ",
    "!!set ", "2001-13-01", "'", '"', "\n", "  ", "\t", "#", "|", ">", "%YAML", "?", "1e999",
    "-.inf", ".nan", "~", "yes", "on", "\x00", "\ufeff", "x: 2001-13-01\n", "[" * 300, "9" * 5000,
])


@settings(max_examples=150, deadline=None)
@given(st.lists(_yaml_bits | st.text(max_size=3), max_size=20).map("".join))
def test_random_yaml_text_gives_a_spec_or_a_one_line_spec_error(
    tmp_path_factory: pytest.TempPathFactory, text: str,
) -> None:
    path = tmp_path_factory.getbasetemp() / "random.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_spec(path)
    except SpecError as err:
        assert str(err).startswith(f"{path}: ") and len(str(err).splitlines()) == 1
