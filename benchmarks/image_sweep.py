"""A sweep of image trials end to end, packed against one trial per Ray trial (``--pack 1``).

    python benchmarks/image_sweep.py [--epochs 2] [--pack 6] [--channels 16] [--max-train 1000]

The issue's sweep: 12 trials × 3 seeds of ``small_cnn`` on MNIST-5k (28×28, minibatch SGD,
batch 64, momentum 0.9, weight decay 5e-4, random crops; a grid of 4 α × 3 label schemes),
through the whole stack (local Ray, MLflow sqlite, records, Parquet), ``--pack 1``
first (each trial a pack of its 3 seeds), then ``--pack N`` (N trials × 3 seeds per pack), back
to back in this process on the same Ray runtime. Prints each sweep's wall time and Σ trial
compute, and the ratio. On a CPU the pack's arithmetic is no faster than the trials' one after
another (benchmarks/packed_images.py), so the ratio is what packing saves per Ray trial: actor
hand-overs, data loads, state files, the driver's per-result work.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml


def write_spec(folder: Path, args: argparse.Namespace) -> Path:
    spec = {
        "name": "images",
        "trial": {"data": {"name": "mnist5k", "view": "rare_subclass", "rho": 0.1,
                           "augment": True, "max_train": args.max_train},
                  "model": {"name": "small_cnn", "channels": args.channels},
                  "optim": {"epochs": args.epochs, "batch_size": 64, "lr": 0.1, "momentum": 0.9,
                            "weight_decay": 5.0e-4},
                  "mixup": {"alpha": 1.0}, "log_every": 1},
        "search_space": {"mixup.alpha": {"kind": "grid", "values": [0.2, 0.5, 1.0, 2.0]},
                         "mixup.label_scheme": {"kind": "grid",
                                                "values": ["same", "independent", "dominant"]}},
        "search": {"algorithm": "grid", "max_concurrent": 2},
        "objective": {"metric": "val/acc_rare", "mode": "max"}, "resources": {"cpu": 1},
        "seeds": [0, 1, 2],
    }
    path = folder / "images.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--pack", type=int, default=6, help="trials per pack of the packed run")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--max-train", type=int, default=1000)
    args = parser.parse_args()

    from _sweeps import run_sweep

    from sweeps.execution import tuner as ray_backend

    walls: dict[int, float] = {}
    ray_backend.connect(None)
    for pack in (1, args.pack):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            out, records = run_sweep(write_spec(folder, args), pack=pack, trials=12)
            compute = sum(r.compute_seconds for r in records)
        walls[pack] = out.wall_seconds
        print(f"--pack {pack:>2}: {out.wall_seconds:6.1f} s of sweep; Σ trial compute "
              f"{compute:6.1f} s; {len(records)} trials × 3 seeds", flush=True)
    ray_backend.shutdown()
    print(f"--pack 1 / --pack {args.pack}: {walls[1] / walls[args.pack]:.2f}x faster packed "
          f"(target on this CPU: 2x)")


if __name__ == "__main__":
    main()
