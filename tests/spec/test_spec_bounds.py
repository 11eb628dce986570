"""Bounded before expensive: sizes are refused before any per-point work, in one line. And hostile
specs of every shape (a key given twice at any depth, rates and execution settings out of range
or of the wrong type) are refused in one line naming the key."""

from __future__ import annotations

import io
import math
import sys
import time
from typing import ClassVar

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixup_cli.main import main
from mixup_core.config import MAX_LR, TrialConfig, flat_keys, to_flat
from sweeps.spec import SpecError, load_spec, parse_spec, yaml_numbers
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


# --- properties: hostile specs of every shape, each refused in one line naming its key -----------

#: The properties write their spec files in one tmp_path, each example over the last one's.
HOSTILE = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}

class _SpecDumper(yaml.SafeDumper):
    """Writes YAML as the spec loader reads it: a string it would take for a number (``1e-3``,
    a YAML 1.2 float) is quoted, so every value arrives with the type it was generated with."""

    yaml_implicit_resolvers: ClassVar[dict] = {first: list(rules) for first, rules in
                               yaml_numbers.NumberSafeLoader.yaml_implicit_resolvers.items()}


def _load_written(tmp_path, tree: dict) -> str:
    """The SpecError of loading ``tree`` from a file, checked to be one line naming the file."""
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.dump(tree, Dumper=_SpecDumper), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and len(message.splitlines()) == 1, message
    return message


# Any printable key, quoted where YAML needs it; no line breaks, which YAML may fold together.
_KEYS = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=12)
_LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
_TREES = st.recursive(_LEAVES, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(_KEYS, inner, min_size=1, max_size=4), max_leaves=15)


def _collections(node: yaml.Node):
    """Every mapping and sequence node under ``node``, depth first (keys before values)."""
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        yield node
        children = node.value if isinstance(node, yaml.SequenceNode) else \
            [child for pair in node.value for child in pair]
        for child in children:
            yield from _collections(child)


@settings(max_examples=300, **HOSTILE)
@given(tree=st.dictionaries(_KEYS, _TREES, min_size=1, max_size=4), data=st.data())
def test_a_key_given_twice_at_any_depth_is_refused_naming_the_key_and_its_line(tmp_path, tree, data):
    root = _SpecDumper(io.StringIO()).represent_data(tree)
    for node in _collections(root):  # block or flow style, level by level
        node.flow_style = data.draw(st.booleans())
    mappings = [node for node in _collections(root) if isinstance(node, yaml.MappingNode)]
    target = data.draw(st.integers(0, len(mappings) - 1), label="mapping")
    key = data.draw(st.sampled_from([k for k, _ in mappings[target].value]), label="key").value
    mappings[target].value.append((yaml.ScalarNode("tag:yaml.org,2002:str", key),
                                   yaml.ScalarNode("tag:yaml.org,2002:int", "0")))
    text = yaml.serialize(root, Dumper=_SpecDumper)
    # Where the second one stands, as YAML's composer (which never checks keys) places it.
    composed = yaml.compose(text, Loader=yaml_numbers.NumberSafeLoader)
    again = [node for node in _collections(composed) if isinstance(node, yaml.MappingNode)]
    line = again[target].value[-1][0].start_mark.line + 1
    path = tmp_path / "twice.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert len(message.splitlines()) == 1, message
    assert f"line {line}, " in message and f"duplicate key {key!r}" in message, (message, text)


_DOTTED_KEYS = sorted(key for key in flat_keys() if "." in key)


@settings(max_examples=60, deadline=None)
@given(section=st.sampled_from(["trial", "smoke"]), key=st.sampled_from(_DOTTED_KEYS),
       nested_first=st.booleans())
def test_a_trial_key_given_both_dotted_and_nested_is_refused_naming_it(section, key, nested_first):
    head, _, tail = key.partition(".")
    value = to_flat(TrialConfig())[key]
    entries = [(key, value), (head, {tail: value})]
    tree = {"name": "twice", section: dict(entries[::-1] if nested_first else entries)}
    with pytest.raises(SpecError) as err:
        parse_spec(tree, source="x.yaml")
    assert str(err.value) == f"x.yaml: {section}.{key}: given twice (once dotted, once nested)"


_GRID_KEYS = sorted(key for key in flat_keys() if key != "seed")


@pytest.fixture
def checked_points(monkeypatch) -> list[object]:
    """Every point the loader checks against the trial config (none, when a size is refused)."""
    checked: list[object] = []
    real = spec_loader._Reader.check_point
    monkeypatch.setattr(spec_loader._Reader, "check_point",
                        lambda self, *a, **k: checked.append(a) or real(self, *a, **k))
    return checked


@settings(max_examples=150, **HOSTILE)
@given(data=st.data())
def test_a_grid_over_the_trial_limit_is_refused_within_a_second_before_any_point(
        tmp_path, checked_points, data):
    sizes = data.draw(st.lists(st.integers(1, 12), min_size=1, max_size=12)
                      .filter(lambda sizes: math.prod(sizes) > 1), label="sizes")
    points = math.prod(sizes)  # over the limit with num_samples at most the limit itself
    samples = data.draw(st.integers(spec_loader.MAX_TRIALS // points + 1, spec_loader.MAX_TRIALS),
                        label="num_samples")
    keys = data.draw(st.permutations(_GRID_KEYS))[:len(sizes)]
    aliased = data.draw(st.booleans(), label="aliases")
    shared: dict[int, list[int]] = {}  # one list object per size: YAML writes repeats as aliases
    space = {}
    for key, size in zip(keys, sizes, strict=True):
        values = shared.setdefault(size, list(range(size))) if aliased else list(range(size))
        space[key] = {"kind": "grid", "values": values}
    tree = {"name": "huge", "search": {"algorithm": data.draw(st.sampled_from(["grid", "random"])),
                                       "num_samples": samples}, "search_space": space}
    checked_points.clear()
    start = time.perf_counter()
    message = _load_written(tmp_path, tree)
    elapsed = time.perf_counter() - start
    assert f"search.num_samples: {samples * points:,} trials planned" in message
    assert checked_points == [] and elapsed < 1.0, elapsed


def _bad_rates(key: str) -> st.SearchStrategy[object]:
    """Values ``key`` (optim.lr or optim.weight_decay) must refuse: out of range either way
    (a learning rate must also be > 0), not finite, too large for a float, or not a number."""
    below = st.floats(max_value=-math.ulp(0.0)) | st.integers(max_value=-1)  # -0.0 is 0.0
    if key == "optim.lr":
        below |= st.sampled_from([0, 0.0, -0.0])
    above = (st.floats(min_value=MAX_LR, exclude_min=True) | st.just(1e308)
             | st.integers(min_value=int(MAX_LR) + 1, max_value=10**400))  # 10**400: no float
    return st.one_of(
        above, below, st.floats(allow_nan=True).filter(math.isnan), st.text(max_size=20),
        st.booleans(), st.none(), st.lists(st.floats(0.1, 1.0), max_size=2),
        st.dictionaries(_KEYS, st.integers(), max_size=2))


_GOOD_RATES = {"optim.lr": [0.1, 0.5], "optim.weight_decay": [0.0, 0.01]}


def _hostile_rate_spec(key: str, bad: object, where: str, index: int) -> tuple[dict, str]:
    """A spec with ``bad`` for ``key`` at ``where``, and the dotted place its error must name."""
    head, _, tail = key.partition(".")
    if where in ("trial", "smoke"):
        return {"name": "rate", where: {key: bad}}, f"{where}.{key}: "
    if where in ("trial nested", "smoke nested"):
        section = where.split()[0]
        return {"name": "rate", section: {head: {tail: bad}}}, f"{section}.{key}: "
    at = f"search_space.{key}"
    if where == "values":
        values = list(_GOOD_RATES[key])
        values.insert(index, bad)
        dimension, named = {"kind": "choice", "values": values}, f"{at}.values[{index}]: "
    else:  # a range whose upper end is the bad value
        dimension, named = {"kind": "uniform", "low": _GOOD_RATES[key][0], "high": bad}, f"{at}."
    return {"name": "rate", "search": {"algorithm": "random"}, "search_space": {key: dimension}}, named


@settings(max_examples=400, **HOSTILE)
@given(data=st.data(), key=st.sampled_from(["optim.lr", "optim.weight_decay"]),
       where=st.sampled_from(["trial", "trial nested", "smoke", "smoke nested", "values", "range"]),
       index=st.integers(0, 2))
def test_a_rate_out_of_range_or_not_a_number_is_refused_naming_its_key(
        tmp_path, data, key, where, index):
    bad = data.draw(_bad_rates(key), label="value")
    tree, named = _hostile_rate_spec(key, bad, where, index)
    message = _load_written(tmp_path, tree)
    assert named in message, message


_NOT_INTEGERS = st.one_of(st.floats(allow_nan=True), st.booleans(), st.none(), st.text(max_size=20),
                          st.lists(st.integers(), max_size=2))
_BAD_EXECUTION = {
    "retries": st.integers(max_value=-1) | st.integers(min_value=spec_loader.MAX_RETRIES + 1)
    | _NOT_INTEGERS,
    "pack": st.integers(max_value=0) | st.integers(min_value=spec_loader.MAX_PACK + 1)
    | _NOT_INTEGERS.filter(lambda value: value != "auto"),
}
_GOOD_EXECUTION = {"retries": st.integers(0, spec_loader.MAX_RETRIES),
                   "pack": st.integers(1, spec_loader.MAX_PACK) | st.just("auto")}


@settings(max_examples=300, **HOSTILE)
@given(data=st.data(), field=st.sampled_from(["retries", "pack"]), with_other=st.booleans())
def test_execution_retries_or_pack_out_of_range_or_of_another_type_is_refused_naming_it(
        tmp_path, data, field, with_other):
    execution = {field: data.draw(_BAD_EXECUTION[field], label=field)}
    if with_other:
        other = "pack" if field == "retries" else "retries"
        execution[other] = data.draw(_GOOD_EXECUTION[other], label=other)
    message = _load_written(tmp_path, {"name": "execution", "execution": execution})
    assert f"execution.{field}: " in message, message


# An integer of more than 4,300 digits (Python's limit for reading one) used to stop PyYAML
# with a bare ValueError naming neither key nor line.
@settings(max_examples=20, **HOSTILE)
@given(key=st.sampled_from(["trial.optim.lr", "trial.optim.weight_decay", "execution.retries",
                            "execution.pack"]),
       digits=st.integers(sys.get_int_max_str_digits() + 1, 2 * sys.get_int_max_str_digits()),
       sign=st.sampled_from(["", "-"]))
def test_an_integer_too_long_for_python_to_read_is_refused_naming_its_key_or_line(
        tmp_path, key, digits, sign):
    section, _, field = key.partition(".")
    path = tmp_path / "long.yaml"
    path.write_text(f"name: long\n{section}:\n  {field}: {sign}{'9' * digits}\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert len(message.splitlines()) == 1 and (f"{key}: " in message or "line 3" in message), message
