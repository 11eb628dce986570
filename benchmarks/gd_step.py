"""Speed of one full-batch GD step of the default feature-noise task, against the machine.

Prints ms per step (ERM and Mixup), the achieved GFLOP/s of the step's two matrix products, and
the single-core float32 matmul GFLOP/s measured in the same process. Run single-threaded so the
comparison is core for core:

    python benchmarks/gd_step.py [--steps 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from _reference import Trainer  # the unpacked oracle (tests/core/reference_trainer.py)

from mixup_core import TrialConfig


def best_seconds(fn: Callable[[], object], *, calls: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean seconds per call over ``calls`` calls."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def matmul_gflops(size: int = 1024, *, repeats: int) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / best_seconds(lambda: a @ b, calls=10, repeats=repeats) / 1e9


def step_flops(config: TrialConfig) -> float:
    """FLOPs of the forward product X Wᵀ and the gradient product Gᵀ X (the rest is O(n·P·K·m))."""
    d = config.data
    rows, cols = d.n_train * d.num_patches, d.num_classes * config.model.width
    return 2 * (2.0 * rows * d.dim * cols)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)

    peak = matmul_gflops(repeats=args.repeats)
    print(f"single-core float32 matmul (1024x1024): {peak:.1f} GFLOP/s")
    for label, updates in [("ERM", {"mixup.alpha": 0.0}), ("Mixup α=1", {"mixup.alpha": 1.0})]:
        config = TrialConfig().replace(**updates)
        trainer = Trainer(config, device="cpu")
        seconds = best_seconds(trainer.train_epoch, calls=args.steps, repeats=args.repeats)
        achieved = step_flops(config) / seconds / 1e9
        print(f"{label:>10}: {seconds * 1e3:.3f} ms/step, {achieved:.1f} GFLOP/s = "
              f"{100 * achieved / peak:.0f}% of matmul rate "
              f"({step_flops(config) / 1e6:.0f} MFLOP/step)")
    peak_after = matmul_gflops(repeats=args.repeats)
    print(f"matmul rate re-measured after the steps: {peak_after:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
