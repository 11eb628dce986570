"""The Optuna adapter: the only module of the project that imports optuna.

Two uses: the journal-file study that every ``search.algorithm: optuna`` sweep, packed or not,
asks its configs from and tells its results to (:class:`JournalStudy`, driven by
sweeps.execution.tuner's searcher), and fANOVA / PED-ANOVA parameter importance over a finished
sweep's trials, replayed into an in-memory study (Ray Tune has no importance analysis, ray#25522).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution


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


#: Importance evaluators: PED-ANOVA (Optuna's ``PedAnovaImportanceEvaluator``, the default:
#: 0.1 s at 10,000 trials where fANOVA takes ~90 s, optuna#5212) and fANOVA (64 trees).
IMPORTANCE_METHODS = ("ped-anova", "fanova")


def fanova_importances(
    configs: Sequence[Mapping[str, Any]], keys: Sequence[str], values: Sequence[float], *,
    maximize: bool, seed: int, second: Sequence[float] | None = None,
    method: str = "fanova",
) -> tuple[dict[str, float] | None, dict[str, float] | None, int]:
    """Importance of ``keys`` for ``values`` (one per config), and for ``second``, by
    ``method`` (one of :data:`IMPORTANCE_METHODS`).

    Trials whose value is not finite are left out. Returns the importances for each target
    (summing to 1; None when there is no variance to split, or no second target) and the number
    of trials the study held.
    """
    import optuna
    from optuna.importance import (
        FanovaImportanceEvaluator,
        PedAnovaImportanceEvaluator,
        get_param_importances,
    )

    if method not in IMPORTANCE_METHODS:
        raise ValueError(f"unknown importance method {method!r}")

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
            evaluator = (FanovaImportanceEvaluator(seed=seed) if method == "fanova"
                         else PedAnovaImportanceEvaluator())
            try:
                found = get_param_importances(study, evaluator=evaluator, target=target)
            except RuntimeError:  # "zero total variance": every trial scored the same
                return None
            total = sum(found.values())
            if not total > 0:
                return None
            return {k: v / total for k, v in found.items()}  # normalized: shares summing to 1

        first = importances(None)
        other = None
        if second is not None and any(map(math.isfinite, second)):
            # PED-ANOVA ranks what gets a target low; fANOVA splits variance (sign-free)
            sign = -1.0 if maximize and method == "ped-anova" else 1.0
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                other = importances(lambda t: sign * float(t.user_attrs["second"]))
    return first, other, len(study.get_trials(deepcopy=False))  # `trials` copies every trial


def _search_distribution(kind: str, values: Sequence[Any], low: float | None,
                         high: float | None, q: float | None) -> BaseDistribution:
    """A searched dimension as an Optuna distribution, with ``ray.tune``'s semantics
    (``randint`` excludes ``high``; ``quniform`` draws multiples of ``q``), as Ray Tune's own
    ``OptunaSearch`` converts them."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    lo, hi = float(low or 0.0), float(high or 0.0)
    if kind == "choice":
        return CategoricalDistribution(list(values))
    if kind == "uniform":
        return FloatDistribution(lo, hi)
    if kind == "loguniform":
        return FloatDistribution(lo, hi, log=True)
    if kind == "quniform":
        return FloatDistribution(lo, hi, step=float(q or 1.0))
    if kind == "randint":
        return IntDistribution(int(lo), int(hi) - 1)
    raise ValueError(f"{kind!r} cannot be searched by Optuna")  # grid: refused by the spec loader


class JournalStudy:
    """The Optuna study of a ``search.algorithm: optuna`` sweep, packed or not.

    It lives in a journal file in the sweep folder (``optuna.journal``: ``resume`` reopens it,
    and ``optuna-dashboard optuna.journal`` shows it). :meth:`ask` hands out a whole pack's
    configs at once (one for an unpacked trial); TPE's constant liar treats the trials still
    training as if they had scored worst, so one pack does not ask for one point ``n`` times.
    While a trial trains, :meth:`report` keeps its objective per epoch (Optuna's intermediate
    values) and :meth:`annotate` its user attributes (our trial id, the chosen epoch's values).

    Reports and attributes go through the storage by trial id (``BaseStorage``'s public
    methods): ``optuna.trial.Trial`` would run the sampler's ``before_trial`` again for a trial
    reopened after a resume.
    """

    def __init__(self, path: str, *, name: str,
                 space: Mapping[str, tuple[str, Sequence[Any], float | None, float | None,
                                           float | None]],
                 modes: Sequence[str], seed: int) -> None:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.distributions = {key: _search_distribution(*dim) for key, dim in space.items()}
        self._storage = JournalStorage(JournalFileBackend(path))
        self.study = optuna.create_study(
            study_name=name, storage=self._storage,
            sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True),
            directions=["maximize" if mode == "max" else "minimize" for mode in modes],
            load_if_exists=True)
        self._study_id = self._storage.get_study_id_from_name(name)
        self._single = len(modes) == 1
        self._trial_ids: dict[int, int] = {}  # Optuna trial number -> its storage id

    def ask(self, n: int) -> list[tuple[int, dict[str, Any]]]:
        """``n`` new trials: (Optuna trial number, params) each."""
        asked = [self.study.ask(fixed_distributions=self.distributions) for _ in range(n)]
        return [(trial.number, dict(trial.params)) for trial in asked]

    def running_attrs(self) -> list[dict[str, Any]]:
        """The user attributes of the trials still running in the journal (what they had
        reached when a driver was killed; a resumed sweep goes on from there)."""
        import optuna

        return [dict(t.user_attrs) for t in
                self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))]

    def _trial_id(self, number: int) -> int:
        known = self._trial_ids.get(number)
        if known is None:
            known = self._trial_ids[number] = \
                self._storage.get_trial_id_from_study_id_trial_number(self._study_id, number)
        return known

    def report(self, number: int, epoch: int, value: float) -> None:
        """Keeps trial ``number``'s objective at ``epoch`` (Optuna's intermediate value; a
        multi-objective study has none, as Optuna's ``Trial.report`` refuses them). Not
        finite values and finished trials are left out; an epoch reported again (a resumed
        trial re-sends its last report) overwrites the same value."""
        import optuna

        if not self._single or not math.isfinite(value):
            return
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            self._storage.set_trial_intermediate_value(self._trial_id(number), epoch, value)

    def annotate(self, number: int, attrs: Mapping[str, Any]) -> None:
        """Sets user attributes of trial ``number`` (JSON values); a finished trial keeps its own."""
        import optuna

        trial_id = self._trial_id(number)
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            for key, value in attrs.items():
                self._storage.set_trial_user_attr(trial_id, key, value)

    def tell(self, number: int, values: Sequence[float] | None) -> None:
        """Completes trial ``number`` with one value per objective; None or a NaN fails it (a
        diverged trial). A trial already finished (told before a resume) is left as it is."""
        import optuna

        if self._storage.get_trial(self._trial_id(number)).state.is_finished():
            return
        if values is None or not all(math.isfinite(v) for v in values):
            self.study.tell(number, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(number, values[0] if len(values) == 1 else list(values))

    def fail_unclaimed(self, claimed: set[int]) -> None:
        """Fails the trials still running in the journal that no pack trains (asked just before
        a driver was killed, and never handed to Ray Tune)."""
        import optuna

        for trial in self.study.get_trials(deepcopy=False,
                                           states=(optuna.trial.TrialState.RUNNING,)):
            if trial.number not in claimed:
                self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
