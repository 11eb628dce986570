"""The Optuna adapter: the only module of the project that imports optuna.

Two uses: the seeded TPE sampler of ``search.algorithm: optuna`` (handed to Ray Tune's
``OptunaSearch`` by sweeps.ray_backend), and fANOVA parameter importance over a finished sweep's
trials, replayed into an in-memory study (Ray Tune has no importance analysis, ray#25522).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution


def tpe_sampler(seed: int) -> optuna.samplers.BaseSampler:
    """A seeded TPE sampler, so an Optuna sweep proposes the same trials on every run."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.samplers.TPESampler(seed=seed)


def _distribution(values: list[Any]) -> BaseDistribution:
    """Float range for plain numbers, categorical otherwise (None, strings, booleans)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric:
        return FloatDistribution(float(min(values)), float(max(values)))
    unique: list[Any] = []
    for value in values:
        if value not in unique:
            unique.append(value)
    return CategoricalDistribution(unique)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def fanova_importances(
    configs: Sequence[Mapping[str, Any]], keys: Sequence[str], values: Sequence[float], *,
    maximize: bool, seed: int, second: Sequence[float] | None = None,
) -> tuple[dict[str, float] | None, dict[str, float] | None, int]:
    """fANOVA importance of ``keys`` for ``values`` (one per config), and for ``second``.

    Trials whose value is not finite are left out. Returns the importances for each target
    (summing to 1; None when there is no variance to split, or no second target) and the number
    of trials the study held.
    """
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    distributions = {k: _distribution([c.get(k) for c in configs]) for k in keys}
    with _quiet():
        study = optuna.create_study(direction="maximize" if maximize else "minimize")
        for index, (config, value) in enumerate(zip(configs, values, strict=True)):
            if not math.isfinite(value):
                continue
            params = {k: (float(config[k]) if isinstance(distributions[k],
                                                          optuna.distributions.FloatDistribution)
                          else config.get(k)) for k in keys}
            attrs = {"second": second[index]} if second is not None else {}
            study.add_trial(optuna.trial.create_trial(
                params=params, distributions=distributions, value=value, user_attrs=attrs))

        def importances(target: Any) -> dict[str, float] | None:
            try:
                return get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed),
                                             target=target)
            except RuntimeError:  # "zero total variance": every trial scored the same
                return None

        first = importances(None)
        other = None
        if second is not None and any(map(math.isfinite, second)):
            other = importances(lambda t: float(t.user_attrs["second"]))
    return first, other, len(study.trials)
