"""Parameter importance and ``best`` on a large sweep: PED-ANOVA against fANOVA, and ranking.

    python benchmarks/importance.py [--trials 10000] [--fanova-trials 1000] [--resamples 20]
    python benchmarks/importance.py --sweep paper_feature_noise [--storage sweep_results]

Builds a synthetic sweep of ``--trials`` trials (α uniform in [0, 4], six label schemes, six
switch-off epochs incl. never; 10 logged epochs each; the objective rises with the switch-off
epoch and α, plus noise) as real records turned into the real Parquet tables, then times:
PED-ANOVA importance of the three keys at ``--trials`` trials, fANOVA at ``--fanova-trials``
(fANOVA's cost grows with the trial count: at 10,000 it takes minutes) and PED-ANOVA at the same
size for the ratio, the report's importance (``sweeps.importance.importance``: fANOVA plus
``--resamples`` bootstrap refits) at that size, and ``best`` (``sweeps.best_configs``, in this
process, and the ``mixup-sweep best`` command end to end) on the full sweep.

With ``--sweep NAME`` it times nothing but checks a stored sweep instead: each estimator's
shares (with n and the bootstrap interval, and PED-ANOVA's refusal if any) next to how far
each key moves the mean objective (best value minus worst value of the per-value means), the
check that caught PED-ANOVA ranking α first on the main job.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sweeps.importance import ImportanceResult

KEYS = ["mixup.alpha", "mixup.label_scheme", "mixup.stop_epoch"]
SCHEMES = ["same", "independent", "power", "dominant", "threshold", "constant"]
STOPS = [0, 100, 200, 300, 500, None]


def make_sweep(storage: Path, trials: int, seed: int = 0) -> list[dict]:
    from sweeps.store import parquet_io, tables
    from sweeps.store.layout import write_meta
    from sweeps.store.records import TrialRecord

    rng = np.random.default_rng(seed)
    folder = storage / "big"
    folder.mkdir(parents=True)
    records, configs = [], []
    for i in range(trials):
        config = {"mixup.alpha": float(rng.uniform(0, 4)),
                  "mixup.label_scheme": SCHEMES[int(rng.integers(len(SCHEMES)))],
                  "mixup.stop_epoch": STOPS[int(rng.integers(len(STOPS)))]}
        stop = config["mixup.stop_epoch"]
        level = 0.4 + 0.5 * (1.0 if stop is None else stop / 500) * min(config["mixup.alpha"], 1)
        record = TrialRecord(f"t{i:05d}", config, status="TERMINATED")
        for epoch in range(100, 1001, 100):
            value = float(np.clip(level * epoch / 1000 + rng.normal(0, 0.02), 0, 1))
            record.epochs[epoch] = {"val/acc_rare": value, "test/acc_rare": value,
                                    "test/acc_common": 1.0, "train/loss": 1 - value}
        records.append(record)
        configs.append(config)
    parquet_io.write_rows(folder / parquet_io.TRIALS_FILE,
                          tables.trial_rows(records, metric="val/acc_rare", mode="max"))
    parquet_io.write_rows(folder / parquet_io.EPOCHS_FILE, tables.epoch_rows(records))
    write_meta(folder, {"name": "big", "objective": {"metric": "val/acc_rare", "mode": "max"},
                        "seeds": [0], "spec_text": json.dumps({"search_space": {
                            k: {"kind": "choice"} for k in KEYS}}),
                        "spec_path": "big.yaml", "tracking_uri": "sqlite:///unused.db",
                        "created": time.time()})
    return configs


def importance_seconds(configs: list[dict], values: list[float], method: str) -> float:
    from sweeps.optuna_adapter import fanova_importances

    start = time.perf_counter()
    found, _, count = fanova_importances(configs, KEYS, values, maximize=True, seed=0,
                                         method=method)
    seconds = time.perf_counter() - start
    shares = ", ".join(f"{k} {v:.2f}" for k, v in sorted((found or {}).items()))
    print(f"  {method:>9} over {count:6d} trials: {seconds:7.2f} s  ({shares})", flush=True)
    return seconds


def report_importance_seconds(configs: list[dict], values: list[float], resamples: int) -> float:
    """The report's importance: fANOVA on all trials plus ``resamples`` bootstrap refits."""
    import pandas as pd

    from sweeps.importance import importance

    frame = pd.DataFrame(configs).assign(objective=values)
    start = time.perf_counter()
    result = importance(frame, KEYS, "objective", "max", resamples=resamples)
    seconds = time.perf_counter() - start
    note = f"; {result.resample_note}" if result.resample_note else ""
    print(f"  sweeps.importance (fANOVA + {result.resamples} resamples) over {result.n} trials: "
          f"{seconds:.2f} s  ({describe(result)}{note})", flush=True)
    return seconds


def describe(result: ImportanceResult) -> str:
    return ", ".join(f"{e.key} {e.share:.2f} [{e.low:.2f}, {e.high:.2f}]" for e in result.keys)


def check_sweep(name: str, storage: str, resamples: int) -> None:
    """Each estimator's shares on a stored sweep, next to the per-key spread of the means."""
    import pandas as pd

    from sweeps import load_sweep
    from sweeps.importance import importance
    from sweeps.store.layout import BEST_PREFIX, CONFIG_PREFIX

    sweep = load_sweep(name, storage=storage)
    trials, _ = sweep.tables()
    metric, mode = sweep.objective
    objective = BEST_PREFIX + metric
    keys = [c[len(CONFIG_PREFIX):] for c in trials.columns if c.startswith(CONFIG_PREFIX)
            and trials[c].astype(str).nunique() > 1]
    frame = pd.DataFrame({k: trials[CONFIG_PREFIX + k] for k in keys}).assign(
        objective=pd.to_numeric(trials[objective], errors="coerce"))
    print(f"{name}: {len(frame)} trials, objective {objective} ({mode}), keys {keys}")
    for key in keys:
        means = frame.groupby(frame[key].astype(str), dropna=False)["objective"].mean()
        print(f"  {key}: mean objective per value "
              + ", ".join(f"{v} {m:.3f}" for v, m in means.items())
              + f"; spread {means.max() - means.min():.3f}")
    for method in ("fanova", "ped-anova"):
        start = time.perf_counter()
        result = importance(frame, keys, "objective", mode, method=method, resamples=resamples)
        note = f"; refused: {result.reason}" if result.reason else ""
        print(f"  {method:>9} -> {result.method} over n = {result.n} in "
              f"{time.perf_counter() - start:.2f} s: {describe(result)}{note}")
    from sweeps.optuna_adapter import fanova_importances

    raw, _, _ = fanova_importances(frame.drop(columns="objective").to_dict("records"), keys,
                                   list(frame["objective"]), maximize=mode == "max", seed=0,
                                   method="ped-anova")
    print("  PED-ANOVA without the refusal: "
          + ", ".join(f"{k} {v:.2f}" for k, v in (raw or {}).items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--fanova-trials", type=int, default=1_000)
    parser.add_argument("--resamples", type=int, default=20)
    parser.add_argument("--sweep", help="check a stored sweep's importances instead")
    parser.add_argument("--storage", default="sweep_results")
    args = parser.parse_args()
    if args.sweep:
        check_sweep(args.sweep, args.storage, args.resamples)
        return

    import pandas as pd

    from sweeps import best_configs

    with tempfile.TemporaryDirectory() as tmp:
        storage = Path(tmp)
        start = time.perf_counter()
        configs = make_sweep(storage, args.trials)
        print(f"synthetic sweep of {args.trials} trials written in "
              f"{time.perf_counter() - start:.1f} s")
        trials = pd.read_parquet(storage / "big" / "trials.parquet")
        by_id = dict(zip(trials["trial_id"], trials["best/val/acc_rare"], strict=True))
        values = [float(by_id[f"t{i:05d}"]) for i in range(args.trials)]
        print("importance of the 3 searched keys for best/val/acc_rare:")
        ped_all = importance_seconds(configs, values, "ped-anova")
        n = min(args.fanova_trials, args.trials)
        ped_small = importance_seconds(configs[:n], values[:n], "ped-anova")
        fanova_small = importance_seconds(configs[:n], values[:n], "fanova")
        print(f"  at {n} trials fANOVA / PED-ANOVA: {fanova_small / ped_small:.0f}x; "
              f"PED-ANOVA at {args.trials}: {ped_all:.2f} s (target < 10 s)")
        report_importance_seconds(configs[:n], values[:n], args.resamples)
        start = time.perf_counter()
        ranked = best_configs("big", storage=storage, top=5)
        in_process = time.perf_counter() - start
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "mixup_cli", "best", "big", "--storage",
                              str(storage)], capture_output=True, text=True, check=True)
        command = time.perf_counter() - start
        assert out.stdout.count("\n") > 5 and len(ranked) == 5
        print(f"best over {args.trials} trials: {in_process:.2f} s in process, "
              f"{command:.2f} s for `mixup-sweep best` end to end (target < 1 s)")


if __name__ == "__main__":
    main()
