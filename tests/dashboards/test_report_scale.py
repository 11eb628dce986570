"""The report scales with the sweep: no figure, table or page filters a whole table per trial.

Timing a report is flaky, so this counts instead. The same report is built for a random search
of ``SMALL`` and of ``LARGE`` trials (every trial a configuration of its own, as with a
continuous α), while pandas' whole-table operations are counted by the line of project code
that asked for them: a boolean mask over a column (``==``, ``!=``, ``isin``), a selection by a
boolean mask (``frame[mask]``, ``.loc[mask]``, ``.iloc[mask]``), ``query`` and a row loop
(``iterrows``, ``itertuples``), each only on a table at least as long as the trials table. A
report drawn from one group-by and per-key summaries does the same number of those at either
size; a per-trial (or per-configuration) scan does one more per trial, so the count of its line
grows by about ``LARGE - SMALL``. (``benchmarks/report_scale.py`` times it: 10,000 trials.)
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from pandas.core.indexing import _iLocIndexer, _LocIndexer

from dashboards import report
from mixup_core.config import TrialConfig, to_flat
from sweeps.store.records import TrialRecord
from tests.sweep_helpers import write_finished_sweep

SMALL, LARGE = 200, 800
#: Growth of the counted operations from SMALL to LARGE trials allowed in all (panels and
#: values that happen to appear only in the larger sweep); one scan per trial adds ~600.
SLACK = 40
ROOT = Path(__file__).resolve().parents[2]
SCHEMES = ["same", "independent", "power", "dominant", "constant", "threshold"]
BUDGET, EPOCHS = 40, (10, 20, 30, 40)
OBJECTIVE = {"metric": "val/acc_rare", "mode": "max"}
SPEC = {"trial": {"optim.epochs": BUDGET, "log_every": 10},
        "search_space": {
            "mixup.alpha": {"kind": "loguniform", "low": 0.05, "high": 8.0},
            "mixup.label_scheme": {"kind": "choice", "values": SCHEMES},
            "mixup.stop_epoch": {"kind": "quniform", "low": 0, "high": BUDGET, "q": 10}},
        "search": {"algorithm": "random", "num_samples": 1, "max_concurrent": 2, "seed": 0},
        "objective": OBJECTIVE, "seeds": [0, 1]}
#: Where a counted call is attributed: the first frame outside pandas and numpy.
LIBRARIES = tuple(str(Path(m.__file__).resolve().parent) for m in (pd, np))


def random_search(n: int, seed: int = 0) -> list[TrialRecord]:
    """``n`` short trials of a random search over α (log-uniform), the label scheme and the
    switch-off epoch (0 = ERM ... the budget = Mixup throughout), two seeds each."""
    rng = np.random.default_rng(seed)
    base = {**to_flat(TrialConfig()), "optim.epochs": BUDGET, "log_every": 10}
    records = []
    for i in range(n):
        stop = int(rng.integers(0, BUDGET // 10 + 1)) * 10
        config = {**base, "mixup.alpha": float(math.exp(rng.uniform(math.log(0.05), math.log(8)))),
                  "mixup.label_scheme": SCHEMES[i % len(SCHEMES)], "mixup.stop_epoch": stop}
        learned = 0.4 * (stop > 20) * min(config["mixup.alpha"], 1.0)
        epochs = {}
        for epoch in EPOCHS:
            noise = rng.normal(0, 0.01, 4)
            common, rare = min(1.0, 0.6 + epoch / 100), 0.5 + learned * epoch / BUDGET
            metrics = {"epoch": float(epoch), "val/acc_rare": rare + noise[0],
                       "test/acc_rare": rare + noise[1], "val/acc_common": common + noise[2],
                       "test/acc_common": common + noise[3], "test/acc": 0.9 * common + 0.1 * rare,
                       "features/rare_alignment": 0.01 * epoch * (learned > 0),
                       "features/common_alignment": 0.02 * epoch, "train/loss": 1.0 / epoch}
            metrics.update({f"{k}_std": 0.01 for k in list(metrics) if k != "epoch"})
            epochs[epoch] = metrics
        records.append(TrialRecord(f"r{i:05d}", config, status="TERMINATED", epochs=epochs))
    return records


class Scans:
    """Counts whole-table pandas operations by the project line that asked for them."""

    def __init__(self, min_rows: int) -> None:
        self.min_rows = min_rows
        self.sites: Counter[str] = Counter()
        self.depth = 0  # > 0 inside a counted call: what pandas calls from there is its own

    def hit(self, what: str, length: int) -> None:
        if length < self.min_rows or self.depth:
            return
        frame = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename.startswith(LIBRARIES):
            frame = frame.f_back
        if frame is None:
            return
        path = Path(frame.f_code.co_filename)
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        self.sites[f"{where}:{frame.f_lineno} {what}"] += 1


def _is_mask(key: Any) -> bool:
    if isinstance(key, tuple) and key:
        key = key[0]
    return isinstance(key, (pd.Series, np.ndarray, pd.Index)) and (
        str(key.dtype) in ("bool", "boolean"))


def _counting(scans: Scans, what: str, inner: Callable[..., Any], *,
              masked: bool = False, indexer: bool = False) -> Callable[..., Any]:
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        target = self.obj if indexer else self
        if not masked or (args and _is_mask(args[0])):
            scans.hit(what, len(target))
        scans.depth += 1
        try:
            return inner(self, *args, **kwargs)
        finally:
            scans.depth -= 1

    return wrapper


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Counter[str]]:
    """The counted operations of building the report, by site, for SMALL and LARGE trials."""
    storage = tmp_path_factory.mktemp("scale")
    out: dict[int, Counter[str]] = {}
    for n in (SMALL, LARGE):
        name = f"random_{n}"
        spec = {"name": name, **SPEC}
        write_finished_sweep(storage, name, random_search(n), seeds=(0, 1),
                             spec_text=yaml.safe_dump(spec))
        counter = Scans(min_rows=n)
        patches = [(pd.Series, "isin", "isin", {}), (pd.Series, "__eq__", "==", {}),
                   (pd.Series, "__ne__", "!=", {}),
                   (pd.DataFrame, "__getitem__", "frame[mask]", {"masked": True}),
                   (pd.Series, "__getitem__", "series[mask]", {"masked": True}),
                   (_LocIndexer, "__getitem__", ".loc[mask]", {"masked": True, "indexer": True}),
                   (_iLocIndexer, "__getitem__", ".iloc[mask]", {"masked": True, "indexer": True}),
                   (pd.DataFrame, "query", "query", {}),
                   (pd.DataFrame, "iterrows", "iterrows", {}),
                   (pd.DataFrame, "itertuples", "itertuples", {})]
        with pytest.MonkeyPatch.context() as mp:
            for owner, attr, what, how in patches:
                mp.setattr(owner, attr, _counting(counter, what, getattr(owner, attr), **how))
            paths = report.build_report(name, storage=storage, mlflow=False)
        # every figure but the heatmap, which a sampled search is not drawn as
        drawn = {p.stem for p in paths.pngs}
        assert drawn == set(report.FIGURE_SLUGS) - {"rare_accuracy_heatmap"}, paths.notes
        out[n] = counter.sites
    return out


def _growth(scans: dict[int, Counter[str]], keep: Callable[[str], bool]) -> dict[str, int]:
    sites = set(scans[SMALL]) | set(scans[LARGE])
    return {s: scans[LARGE][s] - scans[SMALL][s] for s in sorted(sites)
            if keep(s) and scans[LARGE][s] != scans[SMALL][s]}


def _report(growth: dict[str, int], scans: dict[int, Counter[str]]) -> str:
    return (f"whole-table operations whose count grows from {SMALL} to {LARGE} trials "
            f"(site: growth): {growth}; all sites at {LARGE}: {dict(scans[LARGE])}")


def _in_best_table(site: str) -> bool:
    return Path(site.split(":")[0]).name == "best_table.py"


def test_figures_and_page_filter_no_table_per_trial(scans: dict[int, Counter[str]]) -> None:
    # everything but dashboards/best_table.py (next test)
    growth = _growth(scans, lambda site: not _in_best_table(site))
    assert sum(abs(g) for g in growth.values()) <= SLACK, _report(growth, scans)
    assert scans[LARGE], "nothing was counted: the counting patches no longer reach pandas"


def test_best_table_filters_no_table_per_configuration(scans: dict[int, Counter[str]]) -> None:
    growth = _growth(scans, _in_best_table)
    assert sum(abs(g) for g in growth.values()) <= SLACK, _report(growth, scans)


def test_counting_sees_a_per_trial_scan(tmp_path: Path) -> None:
    """The counter itself: a loop filtering the trials table once per trial is seen, per trial."""
    frame = pd.DataFrame({"trial_id": [f"t{i}" for i in range(50)], "v": range(50)})
    counter = Scans(min_rows=50)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pd.Series, "__eq__", _counting(counter, "==", pd.Series.__eq__))
        mp.setattr(pd.DataFrame, "__getitem__",
                   _counting(counter, "frame[mask]", pd.DataFrame.__getitem__, masked=True))
        rows = [frame[frame["trial_id"] == t] for t in frame["trial_id"]]
    assert len(rows) == 50
    assert sorted(counter.sites.values()) == [50, 50], counter.sites
