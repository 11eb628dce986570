"""Sweep specs, the model: one checked-in YAML file per sweep, as frozen dataclasses.

A spec names the base trial config, the search space, the search algorithm and budget, the
metric and mode, the scheduler, the resources of one trial and the seeds each trial runs (see
``sweeps/specs/tiny_demo.yaml``; its first comment line gives the launch command). Reading and
checking a spec file is :mod:`sweeps.spec.loader` (:func:`load_spec`), printing a plan is
:mod:`sweeps.spec.plan` (:func:`format_plan`); all three are importable from here. Turning dimensions
into Ray or Optuna objects is the adapters' job; this module imports neither.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any, Literal

from mixup_core.config import TrialConfig, to_flat, trains_as

DimensionKind = Literal["choice", "grid", "uniform", "loguniform", "quniform", "randint"]
Algorithm = Literal["optuna", "random", "grid"]
Mode = Literal["max", "min"]
SchedulerKind = Literal["fifo", "asha"]

#: What ``--smoke`` keeps at most: epochs, samples per grid point, values per grid dimension.
SMOKE_EPOCHS = 20
SMOKE_SAMPLES = 2
SMOKE_GRID_VALUES = 2

#: At most this many trials in one sweep (Tune keeps every trial in the driver's memory).
MAX_TRIALS = 100_000


@dataclass(frozen=True)
class Dimension:
    """One searched trial key: ``values`` for choice/grid, ``low``/``high`` (and ``q``) else.

    ``randint`` excludes ``high``, like ``ray.tune.randint``; ``quniform`` draws multiples of
    ``q`` in ``[low, high]``. Choice and grid values are stored as the config normalises them.
    """

    kind: DimensionKind
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    q: float | None = None


@dataclass(frozen=True)
class SearchSettings:
    """How trials are chosen: ``num_samples`` trials (per grid point for grid and random)."""

    algorithm: Algorithm
    num_samples: int
    max_concurrent: int
    seed: int


@dataclass(frozen=True)
class Objective:
    """The metric the search optimises (a mean over seeds, or its ``_std``) and its direction."""

    metric: str
    mode: Mode


@dataclass(frozen=True)
class SchedulerSettings:
    """Trial scheduling; the ASHA fields (in epochs) are filled for fifo too but unused there."""

    kind: SchedulerKind
    grace_period: int
    max_t: int
    reduction_factor: float


@dataclass(frozen=True)
class Resources:
    """What one trial (all of its seeds) reserves; fractions are allowed."""

    cpu: float
    gpu: float


@dataclass(frozen=True)
class GridTrial:
    """A grid point that runs, and the other grid points that train exactly like it.

    ``merged`` is empty unless :func:`mixup_core.config.trains_as` maps several points of the
    grid to one representative (e.g. every ``mixup.stop_epoch: 0`` point is the same ERM run,
    whatever α and the label scheme say); the first of them in grid order runs.
    """

    point: dict[str, Any]
    merged: tuple[dict[str, Any], ...] = ()

    @property
    def stands_for(self) -> int:
        return 1 + len(self.merged)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep; build one with :func:`load_spec` or :func:`parse_spec`."""

    name: str
    description: str
    path: str  # where the spec came from: a file path, or parse_spec's source
    base: TrialConfig
    search_space: dict[str, Dimension]
    search: SearchSettings
    objective: Objective
    scheduler: SchedulerSettings
    resources: Resources
    seeds: tuple[int, ...]
    smoke: dict[str, Any]  # dotted trial overrides that shrunk() applies
    #: ``execution.pack``: trials per Ray Tune trial ("auto", or 1 = one trial per Ray trial).
    pack: int | str = "auto"
    #: ``execution.retries``: how often a Ray Tune trial whose process or node died is tried
    #: again from its state file; a pack that fails once more is split (sweeps.execution.packing).
    retries: int = 2
    #: Every objective when ``objective`` is a list (Optuna's multi-objective search); the
    #: first is ``objective``, which ranks trials and picks each trial's best epoch.
    objectives: tuple[Objective, ...] = ()
    #: ``plugins``: module names and absolute paths of local plugin files or folders
    #: (:mod:`mixup_core.plugins`), loaded by the driver and by every trial process.
    plugins: tuple[str, ...] = ()

    @property
    def all_objectives(self) -> tuple[Objective, ...]:
        return self.objectives or (self.objective,)

    def grid_points(self) -> list[dict[str, Any]]:
        """The cartesian product of the grid dimensions; one empty dict when there are none."""
        grid = {key: dim.values for key, dim in self.search_space.items() if dim.kind == "grid"}
        return [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]

    def grid_trials(self) -> list[GridTrial]:
        """The grid points that run, each with the points merged into it, in grid order.

        Points merge only when every searched key is a grid key: with a sampled key beside the
        grid, two points train alike only if they do for every sample, which is not checked.
        """
        points = self.grid_points()
        if any(dim.kind != "grid" for dim in self.search_space.values()):
            return [GridTrial(point) for point in points]
        runs: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        for point in points:
            flat = to_flat(trains_as(self.base.replace(**point)))
            runs.setdefault(repr(sorted(flat.items())), (point, []))[1].append(point)
        return [GridTrial(first, tuple(same[1:])) for first, same in runs.values()]

    def grid_size(self) -> int:
        """num_samples × grid points, before equivalent points are merged."""
        if self.search.algorithm == "optuna":
            return self.search.num_samples
        sizes = [len(dim.values) for dim in self.search_space.values() if dim.kind == "grid"]
        return self.search.num_samples * math.prod(sizes)

    def trial_count(self) -> int:
        """How many trials the sweep runs (each runs every seed), equivalent points merged."""
        if self.search.algorithm == "optuna":
            return self.search.num_samples
        return self.search.num_samples * len(self.grid_trials())

    def shrunk(self) -> SweepSpec:
        """The ``--smoke`` version: ``smoke`` overrides, at most 20 epochs, 2 samples, 1 seed.

        Grid dimensions keep their first two values; ASHA's ``max_t`` and ``grace_period`` are
        clipped to the new epoch count; no GPU and at most one CPU per trial is requested (a
        smoke run must work anywhere, and its trials run side by side on a laptop).
        """
        from sweeps.spec.loader import _smoke_base

        base = _smoke_base(self.base, self.smoke)
        max_t = min(self.scheduler.max_t, base.optim.epochs)
        scheduler = dataclasses.replace(
            self.scheduler, max_t=max_t, grace_period=min(self.scheduler.grace_period, max_t))
        space = {key: dataclasses.replace(dim, values=dim.values[:SMOKE_GRID_VALUES])
                 if dim.kind == "grid" else dim for key, dim in self.search_space.items()}
        search = dataclasses.replace(
            self.search, num_samples=min(self.search.num_samples, SMOKE_SAMPLES))
        resources = dataclasses.replace(self.resources, gpu=0.0, cpu=min(self.resources.cpu, 1.0))
        return dataclasses.replace(self, base=base, search_space=space, search=search,
                                   scheduler=scheduler, seeds=self.seeds[:1], resources=resources)

    def with_overrides(
        self, *, num_samples: int | None = None, max_concurrent: int | None = None,
        pack: int | str | None = None,
    ) -> SweepSpec:
        """A copy with the budget changed (e.g. from the command line); None keeps a value."""
        from sweeps.spec.loader import _check_budget, _Reader, parse_pack

        reader = _Reader(self.path)
        packed = self.pack if pack is None else parse_pack(reader, pack, "--pack")
        search = self.search
        if num_samples is not None:
            search = dataclasses.replace(
                search, num_samples=reader.integer(num_samples, "search.num_samples", minimum=1,
                                                   maximum=MAX_TRIALS))
        if max_concurrent is not None:
            search = dataclasses.replace(search, max_concurrent=reader.integer(
                max_concurrent, "search.max_concurrent", minimum=1, maximum=MAX_TRIALS))
        spec = dataclasses.replace(self, search=search, pack=packed)
        _check_budget(reader, spec)
        return spec

