"""Trials per hour for many tiny trials, packed against one trial per Ray trial (``--pack 1``).

    python benchmarks/tiny_trials.py [--trials 1000] [--epochs 40]

A grid of ``--trials`` α values (d = 200, n = 60, 1 seed) runs twice through the whole stack
(local Ray, MLflow sqlite, records, Parquet), ``pack: auto`` first, then ``--pack 1``, back to
back in this process. For each it prints the sweep's wall time, trials per hour, Σ trial compute,
the seconds the driver's MLflow writer spent in MLflow calls (it runs beside Tune's loop) and the
seconds the sweep's end waited for it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml


def write_spec(folder: Path, trials: int, epochs: int) -> Path:
    spec = {
        "name": "tiny", "trial": {"data": {"dim": 200, "n_train": 60, "n_test": 200},
                                  "optim.epochs": epochs, "log_every": 10},
        "search_space": {"mixup.alpha": {"kind": "grid",
                                         "values": [round(0.001 * (i + 1), 4)
                                                    for i in range(trials)]}},
        "search": {"algorithm": "grid", "max_concurrent": 2},
        "objective": {"metric": "val/acc_rare", "mode": "max"}, "resources": {"cpu": 1},
        "seeds": [0],
    }
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()

    from _sweeps import run_sweep

    from sweeps.execution import tuner as ray_backend

    rates: dict[str, float] = {}
    ray_backend.connect(None)
    for pack in ("auto", 1):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            out, records = run_sweep(write_spec(folder, args.trials, args.epochs), pack=pack,
                                     trials=args.trials)
            compute = sum(r.compute_seconds for r in records)
        rates[str(pack)] = 3600 * args.trials / out.wall_seconds
        print(f"--pack {pack:>4}: {out.wall_seconds:7.1f} s of sweep, {rates[str(pack)]:8.0f} trials/h; "
              f"Σ compute {compute:6.1f} s; MLflow writer {out.mlflow_seconds:6.1f} s, "
              f"end waited {out.drain_seconds:5.1f} s", flush=True)
    ray_backend.shutdown()
    print(f"packed / --pack 1: {rates['auto'] / rates['1']:.2f}x trials per hour")


if __name__ == "__main__":
    main()
