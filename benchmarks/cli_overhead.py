"""What the sweep stack costs over the compute it schedules: ``mixup-sweep run`` end to end
against the same packs trained without Ray, MLflow or records.

    python benchmarks/cli_overhead.py [--configs 24] [--epochs 1000] [--no-report]

The issue's sweep: 24 configs (6 α × 4 label schemes) × 3 seeds × 1000 full-batch steps of the
default feature-noise task. First the compute floor: the packs ``pack: auto`` plans for this
machine's CPUs (sweeps.execution.packing), each trained as one ``Pack`` in its own process, one
process per CPU at once, one torch thread each (what the Ray workers get), nothing logged or
written. Then the command a user types, ``mixup-sweep run SPEC`` in a fresh folder (local Ray,
a fresh MLflow sqlite store, records, Parquet, the report unless ``--no-report``), timed from
the shell's side. Prints both, the ratio (target <= 1.3x) and the driver's own sweep time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ALPHAS = [0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
SCHEMES = ["same", "independent", "dominant", "power"]


def write_spec(folder: Path, configs: int, epochs: int) -> Path:
    alphas = ALPHAS[:max(1, configs // len(SCHEMES))]
    spec = {"name": "overhead", "trial": {"optim.epochs": epochs, "log_every": 100},
            "search_space": {"mixup.alpha": {"kind": "grid", "values": alphas},
                             "mixup.label_scheme": {"kind": "grid", "values": SCHEMES}},
            "search": {"algorithm": "grid", "max_concurrent": os.cpu_count() or 1},
            "objective": {"metric": "val/acc_rare", "mode": "max"}, "resources": {"cpu": 1},
            "seeds": [0, 1, 2]}
    path = folder / "overhead.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def train_pack(flat_configs: list[dict[str, Any]]) -> float:
    import torch

    from mixup_core.config import from_flat
    from mixup_core.training import Pack

    torch.set_num_threads(1)
    start = time.perf_counter()
    Pack([from_flat(c) for c in flat_configs]).run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()

    from mixup_core.config import to_flat
    from sweeps.execution.packing import pack_size, plan_packs
    from sweeps.spec import load_spec

    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec_path = write_spec(folder, args.configs, args.epochs)
        spec = load_spec(spec_path)
        size = pack_size(spec, "auto", cpus=cpus, gpus=0)
        base = {k: v for k, v in to_flat(spec.base).items() if k not in spec.search_space}
        packs = [[{**base, **point, "seed": seed} for point in points for seed in spec.seeds]
                 for points in plan_packs(spec, size)]
        start = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(min(cpus, len(packs))) as pool:
            seconds = pool.map(train_pack, packs)
        floor = time.perf_counter() - start
        print(f"compute floor: {len(packs)} packs of {size} configs × 3 seeds, {cpus} at once "
              f"without Ray: {floor:.1f} s (each pack {', '.join(f'{s:.1f}' for s in seconds)} s)",
              flush=True)

        command = [sys.executable, "-m", "mixup_cli", "run", str(spec_path), "--storage",
                   str(folder / "res"), "--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}"]
        if args.no_report:
            command.append("--no-report")
        start = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True, cwd=folder, check=False)
        wall = time.perf_counter() - start
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        sweep_line = next((line for line in out.stdout.splitlines()
                           if line.startswith("Sweep '")), "")
        print(f"mixup-sweep run{' --no-report' if args.no_report else ''}: {wall:.1f} s end to "
              f"end ({sweep_line.strip()})")
    print(f"CLI / compute floor: {wall / floor:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
