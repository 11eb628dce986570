"""Random search against Optuna TPE at scale, packed: wall time, MLflow writer and driver CPU per
trial, so growth beyond linear shows.

    python benchmarks/scale_curve.py [--trials 500 2000 10000] [--epochs 20]

Each size runs twice through the whole stack on one local Ray (MLflow sqlite, records, Parquet,
``pack: auto``): a sweep of short trials (d = 200, n = 60, 1 seed) whose α is drawn uniformly
from [0, 2] by random search, then by Optuna TPE (the study in the sweep folder's journal).
Per run: the sweep's wall time, the seconds the driver's MLflow writer spent in MLflow calls,
the driver process's CPU seconds (user + system: Tune's loop, the sink, Optuna), each per
1,000 trials, and at the end the Optuna / random ratio per size (target at 10,000: <= 2x).
Linear growth keeps the per-1,000 columns flat across sizes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import yaml


def write_spec(folder: Path, algorithm: str, trials: int, epochs: int) -> Path:
    spec = {
        "name": f"scale-{algorithm}",
        "trial": {"data": {"dim": 200, "n_train": 60, "n_test": 200}, "optim.epochs": epochs,
                  "log_every": 10},
        "search_space": {"mixup.alpha": {"kind": "uniform", "low": 0.0, "high": 2.0}},
        "search": {"algorithm": algorithm, "num_samples": trials, "max_concurrent": 2,
                   "seed": 0},
        "objective": {"metric": "val/acc_rare", "mode": "max"}, "resources": {"cpu": 1},
        "seeds": [0],
    }
    path = folder / "scale.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[500, 2000, 10000])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--algorithms", nargs="+", default=["random", "optuna"],
                        choices=["random", "optuna"])
    args = parser.parse_args()

    from _sweeps import run_sweep

    from sweeps.execution import tuner as ray_backend

    ray_backend.connect(None)
    walls: dict[tuple[str, int], float] = {}
    print(f"{'search':>7} {'trials':>7} {'wall s':>8} {'wall/1k':>8} {'writer/1k':>10} "
          f"{'driver CPU/1k':>14}", flush=True)
    for trials in args.trials:
        for algorithm in args.algorithms:
            with tempfile.TemporaryDirectory() as tmp:
                cpu = os.times()
                out, _ = run_sweep(write_spec(Path(tmp), algorithm, trials, args.epochs),
                                   pack="auto", trials=trials)
                after = os.times()
            driver_cpu = (after.user - cpu.user) + (after.system - cpu.system)
            walls[algorithm, trials] = out.wall_seconds
            k = trials / 1000
            print(f"{algorithm:>7} {trials:>7} {out.wall_seconds:>8.1f} "
                  f"{out.wall_seconds / k:>8.1f} {out.mlflow_seconds / k:>10.2f} "
                  f"{driver_cpu / k:>14.2f}", flush=True)
    ray_backend.shutdown()
    for trials in args.trials if len(args.algorithms) == 2 else ():
        print(f"optuna / random at {trials}: "
              f"{walls['optuna', trials] / walls['random', trials]:.2f}x")


if __name__ == "__main__":
    main()
