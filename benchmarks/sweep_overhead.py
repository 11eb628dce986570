"""Orchestration overhead per trial of a sweep of tiny trials, against a plain in-process loop.

    python benchmarks/sweep_overhead.py [--trials 32] [--concurrent 2]

Overhead per trial = (sweep wall time - Σ trial compute time) / trials, where the sweep wall
time runs from the Tuner's start to its end (Ray's own start-up is printed separately) and the
compute time is what the trials measured inside themselves. The same configs then run one after
another in this process, with no Ray, as the baseline.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from mixup_core.config import flatten_nested, from_flat
from mixup_core.training import Pack

TRIAL = {"data": {"dim": 200, "n_train": 60, "n_test": 200}, "optim.epochs": 40, "log_every": 10}


def write_spec(folder: Path, trials: int, concurrent: int) -> Path:
    spec = {
        "name": "overhead", "trial": TRIAL,
        "search_space": {"mixup.alpha": {"kind": "grid",
                                         "values": [round(0.1 * (i + 1), 2) for i in range(trials)]}},
        "search": {"algorithm": "grid", "max_concurrent": concurrent},
        "objective": {"metric": "test/acc_rare", "mode": "max"},
        "resources": {"cpu": 2 / concurrent}, "seeds": [0],
    }
    path = folder / "overhead.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def in_process(trials: int) -> float:
    start = time.perf_counter()
    for i in range(trials):
        config = from_flat({**flatten_nested(TRIAL), "mixup.alpha": round(0.1 * (i + 1), 2)})
        Pack([config]).run()  # one trial of one seed: a pack of one, as a sweep trains it
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--concurrent", type=int, default=2)
    args = parser.parse_args()


    from _sweeps import run_sweep

    from sweeps.execution import tuner as ray_backend

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec_path = write_spec(folder, args.trials, args.concurrent)
        t0 = time.perf_counter()
        ray_backend.connect(None)
        ray_start = time.perf_counter() - t0
        outcome, records = run_sweep(spec_path, trials=args.trials)
        compute = sum(r.compute_seconds for r in records)
        ray_backend.shutdown()
    baseline = in_process(args.trials)
    wall = outcome.wall_seconds
    print(f"trials: {args.trials}, {args.concurrent} at a time; Ray start-up {ray_start:.2f} s")
    print(f"sweep wall time (Tuner start to end, MLflow + records + Parquet): {wall:.2f} s")
    print(f"Σ trial compute time: {compute:.2f} s")
    print(f"orchestration overhead per trial: {(wall - compute) / args.trials:.3f} s "
          f"(wall - Σ compute) / trials; target <= 0.3 s")
    print(f"in-process loop, same trials, no Ray: {baseline:.2f} s "
          f"({baseline / args.trials:.3f} s per trial); sweep / loop = {wall / baseline:.1f}x")


if __name__ == "__main__":
    main()
