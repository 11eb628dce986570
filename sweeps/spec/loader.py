"""Reading and checking sweep specs: :func:`load_spec` (a file) and :func:`parse_spec` (a tree).

:func:`load_spec` reads a spec with the safe YAML loader (YAML 1.2 floats, sweeps.spec.yaml_numbers)
and checks everything it can up front: each searched value, and both ends of each range, must
give a valid :class:`~mixup_core.config.TrialConfig`, so a typo fails here rather than in
trial 17. Every problem, including a missing file or broken YAML, raises :class:`SpecError`, one
line that names the file and the dotted key.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import itertools
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, cast, get_args, get_type_hints

import yaml

from mixup_core import plugin_specs
from mixup_core.catalog import objective_metrics
from mixup_core.config import ConfigError, TrialConfig, flat_keys, from_flat, to_flat
from sweeps.errors import SpecError
from sweeps.spec import yaml_numbers
from sweeps.spec.model import (
    MAX_TRIALS,
    SMOKE_EPOCHS,
    Algorithm,
    Dimension,
    DimensionKind,
    Mode,
    Objective,
    Resources,
    SchedulerKind,
    SchedulerSettings,
    SearchSettings,
    SweepSpec,
)
from sweeps.spec.names import name_problem

_TOP_KEYS = ("name", "description", "plugins", "trial", "search_space", "search", "objective",
             "scheduler", "resources", "seeds", "smoke", "execution")

_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "choice": ("values",), "grid": ("values",), "uniform": ("low", "high"),
    "loguniform": ("low", "high"), "quniform": ("low", "high", "q"), "randint": ("low", "high"),
}
_SCALARS = (str, int, float, bool, type(None))  # every TrialConfig field holds one of these
_SEED_ELSEWHERE = "seeds run inside each trial; list them under the top-level seeds"
# What building a TrialConfig can raise: ConfigError (a ValueError), or OverflowError should an
# integer beyond float range reach the config's float()/isfinite() (values are screened first).
_CONFIG_ERRORS = (ValueError, ArithmeticError)


#: ``run --set KEY=VALUE``: keys under these top-level sections set the spec's own values;
#: any other key is a trial config key (set under ``trial``).
SETTABLE_SECTIONS = ("search", "scheduler", "execution", "resources", "objective", "seeds")


def apply_sets(data: object, sets: dict[str, Any], *, source: str) -> object:
    """A copy of a spec tree with ``run --set KEY=VALUE`` applied (the file is never changed).

    ``KEY`` is a trial config key (``optim.epochs``; set under ``trial``, where the file may
    give it nested or dotted) or a dotted key under one of :data:`SETTABLE_SECTIONS`
    (``execution.pack``, ``search.num_samples``, ``seeds``). The copy is then validated as any
    spec is, so a bad value is one line naming its key.

    Raises:
        SpecError: A key the spec searches (set it in ``search_space`` instead), a key that is
            neither, or a tree that is not a mapping.
    """
    if not sets:
        return data
    if not isinstance(data, dict):
        return data  # parse_spec says what is wrong with it
    tree = copy.deepcopy(data)
    searched = tree.get("search_space")
    for key, value in sets.items():
        at = f"--set {key}"
        head, _, rest = key.partition(".")
        if head in SETTABLE_SECTIONS:
            _set_nested(tree, key.split("."), value, source, at)
            continue
        if head in _TOP_KEYS:
            raise SpecError(source, at, f"{head} cannot be set from the command line (settable: "
                                        f"trial keys and keys under {', '.join(SETTABLE_SECTIONS)})")
        if isinstance(searched, dict) and key in searched:
            raise SpecError(source, at, "the spec searches this key; change its values in "
                                        "search_space instead")
        trial = tree.setdefault("trial", {})
        if trial is None:
            trial = tree["trial"] = {}
        if not isinstance(trial, dict):
            return tree  # parse_spec says what is wrong with the trial section
        nested = trial.get(head) if rest else None
        if isinstance(nested, dict) and key not in trial:
            nested[rest] = value
        else:
            trial[key] = value
    return tree


def _set_nested(tree: dict[str, Any], path: list[str], value: object, source: str,
                at: str) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise SpecError(source, at, f"{part} is not a section in this spec")
        node = child
    node[path[-1]] = value


def load_spec(path: str | os.PathLike[str], sets: dict[str, Any] | None = None) -> SweepSpec:
    """Reads and validates a spec file.

    Args:
        path: The YAML file.
        sets: ``run --set`` overrides (:func:`apply_sets`), applied before validation.

    Returns:
        The validated spec.

    Raises:
        SpecError: The file is missing or unreadable, is not YAML, or is not a valid spec.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(source, "", f"not UTF-8 text ({err.reason})") from err
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        raise SpecError(source, "", f"cannot read the file ({err})") from err
    try:
        data = yaml_numbers.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = err.problem or err.context or "invalid YAML"
        raise SpecError(source, "", f"YAML syntax error at {where}{problem}") from err
    # PyYAML raises ValueError for impossible dates or huge integers, RecursionError for deep
    # nesting; both are malformed input like any other.
    except (yaml.YAMLError, ValueError, RecursionError) as err:
        raise SpecError(source, "", f"YAML error: {type(err).__name__}: {err}") from err
    return parse_spec(apply_sets(data, sets or {}, source=source), source=source)


def parse_spec(data: object, *, source: str) -> SweepSpec:
    """Validates an already-loaded spec tree (as ``yaml.safe_load`` returns it).

    Args:
        data: The tree; anything that is not a valid spec raises.
        source: Where it came from, the first part of every error message.

    Returns:
        The validated spec.

    Raises:
        SpecError: Naming the dotted key of the first problem found.
    """
    r = _Reader(source)
    if not isinstance(data, dict):
        r.fail("", f"expected a mapping at the top level, got {_describe(data)}")
    raw = r.mapping(data, "", allowed=_TOP_KEYS)
    if "name" not in raw:
        r.fail("name", "required")
    name = r.string(raw["name"], "name")
    if problem := name_problem(name):
        r.fail("name", f"{problem}, got {_show(name)}")
    description = r.string(raw.get("description", ""), "description")
    plugins = _parse_plugins(r, raw.get("plugins"), Path(source).parent)

    trial = r.trial_overrides(raw.get("trial"), "trial")
    base = r.build(trial, section="trial", given=trial)
    smoke = r.trial_overrides(raw.get("smoke"), "smoke")
    smoke_base = r.build({**to_flat(base), **_smoke_flat(base, smoke)}, section="smoke",
                         given=smoke)
    search = _parse_search(r, raw.get("search"))
    # Searched values are checked with the smoke overrides too (the epoch cap alone cannot make
    # a value invalid), so --smoke never meets a config error the full sweep would not.
    bases = (base, smoke_base) if smoke else (base,)
    space = _parse_search_space(r, raw.get("search_space"), bases, search)
    objectives = _parse_objectives(r, raw.get("objective"), search.algorithm)
    objective = objectives[0]
    execution = _parse_execution(r, raw.get("execution"))
    spec = SweepSpec(
        name=name, description=description, path=source, base=base, search_space=space,
        search=search, objective=objective,
        scheduler=_parse_scheduler(r, raw.get("scheduler"), objective, base.optim.epochs),
        resources=_parse_resources(r, raw.get("resources")),
        seeds=_parse_seeds(r, raw.get("seeds"), base), smoke=smoke,
        pack=execution[0], retries=execution[1],
        objectives=objectives if len(objectives) > 1 else (), plugins=plugins,
    )
    if len(objectives) > 1 and spec.scheduler.kind != "fifo":
        r.fail("scheduler.kind", f"asha judges one objective; use fifo with a list of "
                                 f"objectives, got {spec.scheduler.kind}")
    _check_budget(r, spec)
    return spec


def _parse_plugins(r: _Reader, value: object, base: Path) -> tuple[str, ...]:
    """``plugins``: module names, or paths of .py files or folders relative to the spec's folder
    (kept absolute); each is imported now, with every installed ``mixup_sweeps.plugins`` entry
    point, so the trial keys below may name what they register."""
    if value is None:
        value = []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        r.fail("plugins", f"must be a list of module names or paths, got {_show(value)}")
    assert isinstance(value, list)
    entries = [str(plugin_specs.resolve(v, base)) if plugin_specs.is_path(v) else v
               for v in value]
    if entries or plugin_specs.installed():
        from mixup_core import plugins as plugin_api  # imports torch: only when there are plugins

        try:
            plugin_api.load_installed()
            plugin_api.load(entries)
        except plugin_api.PluginError as err:
            r.fail("plugins", str(err).removeprefix("plugins: "))
    return tuple(entries)


def parse_pack(r: _Reader, value: object, key: str = "execution.pack") -> int | str:
    """``auto`` or a trial count per pack (1 = one trial per Ray trial)."""
    if value == "auto":
        return "auto"
    if isinstance(value, str):
        r.fail(key, f"must be auto or an integer >= 1, got {_show(value)}")
    return r.integer(value, key, minimum=1, maximum=MAX_PACK)


def _parse_execution(r: _Reader, value: object) -> tuple[int | str, int]:
    raw = r.section(value, "execution", ("pack", "retries"))
    return (parse_pack(r, raw.get("pack", "auto")),
            r.integer(raw.get("retries", 2), "execution.retries", minimum=0, maximum=MAX_RETRIES))


def _check_budget(r: _Reader, spec: SweepSpec) -> None:
    if spec.grid_size() > MAX_TRIALS:
        r.fail("search.num_samples", f"{spec.grid_size():,} trials planned (num_samples × grid "
               f"points); the limit is {MAX_TRIALS:,}")


def _smoke_flat(base: TrialConfig, smoke: dict[str, Any]) -> dict[str, Any]:
    return {"optim.epochs": min(base.optim.epochs, SMOKE_EPOCHS), **smoke}


def _smoke_base(base: TrialConfig, smoke: dict[str, Any]) -> TrialConfig:
    return base.replace(**_smoke_flat(base, smoke))


def _show(value: object) -> str:
    """A short repr for messages; PyYAML values can be huge or deeply shared."""
    if not isinstance(value, _SCALARS):
        return f"a {type(value).__name__}"
    try:
        text = repr(value)
    except ValueError:  # an integer past Python's int-to-str digit limit
        return "a very large integer"
    return text if len(text) <= 60 else f"{text[:57]}..."


def _describe(value: object) -> str:
    if value is None or value == []:
        return "null" if value is None else "an empty list"
    return _show(value)


def _fits_float(value: object) -> bool:
    """Whether a YAML scalar survives ``float()``; PyYAML integers have no size limit."""
    return not isinstance(value, int) or abs(value) <= sys.float_info.max


def _suggest(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown(name: str, known: Sequence[str], what: str = "unknown key") -> str:
    return f"{what}{_suggest(name, known) or f' (known: {list(known)})'}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Reader:
    """Reads one spec's raw tree; every check raises SpecError naming the source and key."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.trial_keys = flat_keys()

    def fail(self, key: str, problem: str) -> NoReturn:
        raise SpecError(self.source, key, problem)

    def mapping(self, value: object, key: str, allowed: Sequence[str] = ()) -> dict[str, Any]:
        """``value`` as a mapping with string keys (only ``allowed`` ones, if given)."""
        if not isinstance(value, dict):
            self.fail(key, f"expected a mapping, got {_describe(value)}")
        for name in value:
            if not isinstance(name, str):
                self.fail(key, f"keys must be strings, got {_show(name)}")
            if allowed and name not in allowed:
                self.fail(_join(key, name), _unknown(name, allowed))
        return value

    def section(self, value: object, key: str, allowed: Sequence[str] = ()) -> dict[str, Any]:
        """An optional section: absent or empty (null) means all its defaults."""
        return {} if value is None else self.mapping(value, key, allowed)

    def string(self, value: object, key: str) -> str:
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {_describe(value)}")
        return value

    def choice(self, value: object, key: str, choices: Sequence[str]) -> str:
        if not isinstance(value, str) or value not in choices:
            hint = _suggest(value, choices) if isinstance(value, str) else ""
            self.fail(key, f"must be one of {list(choices)}, got {_describe(value)}{hint}")
        return value

    def integer(self, value: object, key: str, *, minimum: int,
                maximum: int | None = None) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(key, f"expected an integer, got {_describe(value)}")
        if value < minimum:
            self.fail(key, f"must be >= {minimum}, got {_show(value)}")
        if maximum is not None and value > maximum:
            self.fail(key, f"must be <= {maximum:,}, got {_show(value)}")
        return value

    def number(self, value: object, key: str) -> float:
        """A finite int or float that converts to float (a bool is not a number here)."""
        if (isinstance(value, (int, float)) and not isinstance(value, bool)
                and _fits_float(value) and math.isfinite(value)):
            return value
        self.fail(key, f"expected a finite number, got {_describe(value)}")

    def trial_overrides(self, value: object, key: str) -> dict[str, Any]:
        """A trial section, nested and/or dotted, as one flat dict of scalar values."""
        flat: dict[str, Any] = {}
        for name, item in self.section(value, key).items():
            if isinstance(item, dict) and "." not in name and name not in self.trial_keys:
                for sub, leaf in self.mapping(item, _join(key, name)).items():
                    self._put(flat, f"{name}.{sub}", leaf, key)
            else:
                self._put(flat, name, item, key)
        return flat

    def _put(self, flat: dict[str, Any], dotted: str, value: object, section: str) -> None:
        at = _join(section, dotted)
        if dotted == "seed":
            self.fail(at, _SEED_ELSEWHERE)
        if dotted not in self.trial_keys:
            self.fail(at, _unknown(dotted, self.trial_keys, "not a trial key"))
        if dotted in flat:
            self.fail(at, "given twice (once dotted, once nested)")
        self.scalar(value, at)
        flat[dotted] = value

    def scalar(self, value: object, key: str) -> None:
        """Checks that ``value`` can be a trial config value, before the config sees it."""
        if not isinstance(value, _SCALARS):
            self.fail(key, f"expected a number, string, boolean or null, got {_show(value)}")
        if not _fits_float(value):
            self.fail(key, "integer too large")

    def build(self, flat: dict[str, Any], *, section: str, given: dict[str, Any]) -> TrialConfig:
        """``from_flat(flat)``; an error about a key in ``given`` is reported at that key."""
        try:
            return from_flat(flat)
        except _CONFIG_ERRORS as err:
            config_key, _, problem = str(err).partition(": ")
            if isinstance(err, ConfigError) and config_key in given:
                self.fail(_join(section, config_key), problem)
            self.fail(section, f"invalid trial config ({err})")

    def check_point(self, base: TrialConfig, updates: dict[str, Any], at: str) -> TrialConfig:
        """``base`` with ``updates`` merged in; an invalid result is reported at ``at``."""
        try:
            return base.replace(**updates)
        except _CONFIG_ERRORS as err:
            self.fail(at, f"gives an invalid trial config ({err})")


@functools.cache
def _integer_keys() -> frozenset[str]:
    """Trial keys typed int: a continuous draw such as 7.3 cannot feed them."""
    keys: set[str] = set()

    def visit(cls: type[Any], prefix: str) -> None:
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            if dataclasses.is_dataclass(hint):
                visit(cast(type[Any], hint), f"{prefix}{f.name}.")
            elif hint is int or int in get_args(hint):
                keys.add(f"{prefix}{f.name}")

    visit(TrialConfig, "")
    return frozenset(keys)


def _parse_search(r: _Reader, value: object) -> SearchSettings:
    raw = r.section(value, "search", ("algorithm", "num_samples", "max_concurrent", "seed"))
    algorithm = r.choice(raw.get("algorithm", "optuna"), "search.algorithm", get_args(Algorithm))
    samples = raw.get("num_samples", 1 if algorithm == "grid" else 10)
    return SearchSettings(
        algorithm=cast(Algorithm, algorithm),
        num_samples=r.integer(samples, "search.num_samples", minimum=1, maximum=MAX_TRIALS),
        max_concurrent=r.integer(raw.get("max_concurrent", 2), "search.max_concurrent",
                                 minimum=1, maximum=MAX_TRIALS),
        seed=r.integer(raw.get("seed", 0), "search.seed", minimum=0),
    )


def _parse_search_space(
    r: _Reader, value: object, bases: tuple[TrialConfig, ...], search: SearchSettings,
) -> dict[str, Dimension]:
    """Every dimension, checked against the base and the smoke base.

    The trial count is bounded first, from the lengths of the value lists alone, so a grid of
    10^10 points is refused before any point (or value) is checked.
    """
    algorithm = search.algorithm
    sections = r.section(value, "search_space")
    if algorithm != "optuna":
        sizes = [len(raw["values"]) for raw in sections.values()
                 if isinstance(raw, dict) and raw.get("kind") == "grid"
                 and isinstance(raw.get("values"), list)]
        planned = search.num_samples * math.prod(sizes)
        if planned > MAX_TRIALS:
            r.fail("search.num_samples", f"{planned:,} trials planned (num_samples × grid "
                   f"points); the limit is {MAX_TRIALS:,}")
    space: dict[str, Dimension] = {}
    for key, raw in sections.items():
        at = f"search_space.{key}"
        if key == "seed":
            r.fail(at, _SEED_ELSEWHERE)
        if key not in r.trial_keys:
            r.fail(at, _unknown(key, r.trial_keys, "not a trial key"))
        space[key] = _parse_dimension(r, key, raw, bases)
        if algorithm == "optuna" and space[key].kind == "grid":
            r.fail(f"{at}.kind", "grid is not allowed with search.algorithm optuna; use kind "
                                 "choice, or search.algorithm grid or random")
        if algorithm == "grid" and space[key].kind != "grid":
            r.fail(f"{at}.kind", "search.algorithm grid needs every dimension to be kind grid, "
                                 f"got {space[key].kind}")
    grid = [key for key, dim in space.items() if dim.kind == "grid"]
    if len(grid) > 1:  # single values were checked already; combinations may still clash
        points = itertools.product(*(space[key].values for key in grid))
        for number, combo in enumerate(points, start=1):
            point = dict(zip(grid, combo, strict=True))
            for base in bases:
                r.check_point(base, point, f"search_space (grid trial {number})")
    return space


def _parse_dimension(
    r: _Reader, key: str, value: object, bases: tuple[TrialConfig, ...],
) -> Dimension:
    at = f"search_space.{key}"
    if "kind" not in r.mapping(value, at):
        r.fail(f"{at}.kind", f"required (one of {list(_KIND_FIELDS)})")
    kind = r.choice(r.mapping(value, at)["kind"], f"{at}.kind", list(_KIND_FIELDS))
    raw = r.mapping(value, at, allowed=("kind", *_KIND_FIELDS[kind]))
    for name in _KIND_FIELDS[kind]:
        if name not in raw:
            r.fail(f"{at}.{name}", f"required by kind {kind}")
    if kind in ("choice", "grid"):
        return Dimension(cast(DimensionKind, kind), values=_parse_values(r, key, raw, bases))
    low, high = r.number(raw["low"], f"{at}.low"), r.number(raw["high"], f"{at}.high")
    q = r.number(raw["q"], f"{at}.q") if kind == "quniform" else None
    if kind == "randint":
        low = r.integer(raw["low"], f"{at}.low", minimum=-(2**63))
        high = r.integer(raw["high"], f"{at}.high", minimum=-(2**63))
    if not low < high:
        r.fail(f"{at}.low", f"must be < high = {_show(high)}, got {_show(low)}")
    if kind == "loguniform" and low <= 0:
        r.fail(f"{at}.low", f"loguniform needs low > 0, got {_show(low)}")
    if key in _integer_keys() and kind in ("uniform", "loguniform"):
        r.fail(f"{at}.kind", f"{key} is an integer; use randint, or quniform with integer q")
    if q is not None:
        _check_quantized(r, key, low, high, q)
    for base in bases:  # randint excludes high
        r.check_point(base, {key: low}, f"{at}.low")
        r.check_point(base, {key: high - 1 if kind == "randint" else high}, f"{at}.high")
    return Dimension(cast(DimensionKind, kind), low=low, high=high, q=q)


def _check_quantized(r: _Reader, key: str, low: float, high: float, q: float) -> None:
    at = f"search_space.{key}"
    if q <= 0:
        r.fail(f"{at}.q", f"must be > 0, got {_show(q)}")
    if key in _integer_keys() and not float(q).is_integer():
        r.fail(f"{at}.q", f"{key} is an integer, so q must be a whole number, got {_show(q)}")
    for name, end in (("low", low), ("high", high)):
        steps = end / q
        # Ray refuses bounds that are not multiples of q; Optuna would silently shift them.
        if not math.isfinite(steps) or not math.isclose(steps, round(steps)):
            r.fail(f"{at}.{name}", f"must be a multiple of q = {_show(q)}, got {_show(end)}")


def _parse_values(
    r: _Reader, key: str, raw: dict[str, Any], bases: tuple[TrialConfig, ...],
) -> tuple[Any, ...]:
    at = f"search_space.{key}.values"
    values = raw["values"]
    if not isinstance(values, list) or not values:
        r.fail(at, f"expected a non-empty list, got {_describe(values)}")
    if len(values) > MAX_TRIALS:
        r.fail(at, f"{len(values):,} values; the limit is {MAX_TRIALS:,}")
    normal: list[Any] = []
    seen: set[Any] = set()  # membership in linear time (1, 1.0 and True are one value, as ==)
    for i, value in enumerate(values):
        here = f"{at}[{i}]"
        r.scalar(value, here)
        configs = [r.check_point(base, {key: value}, here) for base in bases]
        value = to_flat(configs[0])[key]  # as the config stores it: 1 -> 1.0 for a float key
        if value in seen:
            r.fail(here, f"repeats {_show(value)}")
        seen.add(value)
        normal.append(value)
    return tuple(normal)


#: At most this many trials in one pack (``execution.pack``).
MAX_PACK = 1024
#: At most this many retries of a Ray Tune trial whose process or node died.
MAX_RETRIES = 10

#: What a spec without ``objective.metric`` chooses on: validation data, never the test set.
DEFAULT_OBJECTIVE = "val/acc_rare"


def _parse_objective(r: _Reader, value: object, at: str = "objective") -> Objective:
    raw = r.section(value, at, ("metric", "mode"))
    metrics = objective_metrics()
    return Objective(
        metric=r.choice(raw.get("metric", DEFAULT_OBJECTIVE), f"{at}.metric", metrics),
        mode=cast(Mode, r.choice(raw.get("mode", "max"), f"{at}.mode", get_args(Mode))),
    )


def _parse_objectives(r: _Reader, value: object, algorithm: str) -> tuple[Objective, ...]:
    """One objective, or a list of them (multi-objective: Optuna only, distinct metrics)."""
    if not isinstance(value, list):
        return (_parse_objective(r, value),)
    if len(value) < 2:
        r.fail("objective", f"a list needs at least two objectives, got {len(value)}")
    if algorithm != "optuna":
        r.fail("objective", f"a list of objectives needs search.algorithm optuna (its "
                            f"multi-objective samplers), got {algorithm}")
    objectives = tuple(_parse_objective(r, item, f"objective[{i}]")
                       for i, item in enumerate(value))
    metrics = [o.metric for o in objectives]
    for i, metric in enumerate(metrics):
        if metric in metrics[:i]:
            r.fail(f"objective[{i}].metric", f"repeats {metric}")
    return objectives


def _parse_scheduler(
    r: _Reader, value: object, objective: Objective, epochs: int,
) -> SchedulerSettings:
    asha_keys = ("grace_period", "max_t", "reduction_factor", "metric", "mode")
    raw = r.section(value, "scheduler", ("kind", *asha_keys))
    kind = r.choice(raw.get("kind", "fifo"), "scheduler.kind", get_args(SchedulerKind))
    if kind == "fifo":
        for name in (name for name in raw if name != "kind"):
            r.fail(f"scheduler.{name}", "only used by kind asha")
    for name in ("metric", "mode"):
        if name in raw and raw[name] != getattr(objective, name):
            r.fail(f"scheduler.{name}", f"must equal objective.{name} "
                                        f"({getattr(objective, name)}), got {_show(raw[name])}")
    grace = r.integer(raw.get("grace_period", 1), "scheduler.grace_period", minimum=1)
    max_t = r.integer(raw.get("max_t", epochs), "scheduler.max_t", minimum=1)
    if max_t < grace:
        r.fail("scheduler.max_t", f"must be >= grace_period = {grace}, got {max_t}")
    factor = r.number(raw.get("reduction_factor", 3), "scheduler.reduction_factor")
    if factor <= 1:
        r.fail("scheduler.reduction_factor", f"must be > 1, got {_show(factor)}")
    return SchedulerSettings(kind=cast(SchedulerKind, kind), grace_period=grace, max_t=max_t,
                             reduction_factor=factor)


def _parse_resources(r: _Reader, value: object) -> Resources:
    raw = r.section(value, "resources", ("cpu", "gpu"))
    cpu = r.number(raw.get("cpu", 1), "resources.cpu")
    gpu = r.number(raw.get("gpu", 0), "resources.gpu")
    if cpu <= 0:
        r.fail("resources.cpu", f"must be > 0, got {_show(cpu)}")
    if gpu < 0:
        r.fail("resources.gpu", f"must be >= 0, got {_show(gpu)}")
    return Resources(cpu=cpu, gpu=gpu)


def _parse_seeds(r: _Reader, value: object, base: TrialConfig) -> tuple[int, ...]:
    if value is None:
        return (0,)
    if not isinstance(value, list) or not value:
        r.fail("seeds", f"expected a non-empty list of integers, got {_describe(value)}")
    seeds: list[int] = []
    for i, seed in enumerate(value):
        at = f"seeds[{i}]"
        seeds.append(r.integer(seed, at, minimum=0))
        r.check_point(base, {"seed": seed}, at)
        if seed in seeds[:-1]:
            r.fail(at, f"repeats seed {seed}")
    return tuple(seeds)
