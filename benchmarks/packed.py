"""Packed against unpacked training of the default feature-noise task, member-step by member-step.

For each pack size B it trains B Mixup members (α = 1, `same` labels, seeds 0..B-1 spread over
``--datasets`` data sets, so B/datasets members share each GEMM) for ``--steps`` full-batch GD
steps with no evaluation, and prints member-steps per second, the GFLOP/s of the two GEMMs of a
step (96 MFLOP per member on the default task) and the ratio to the unpacked ``Trainer`` measured
in the same process, for float32 and bfloat16. On CUDA (when present, or ``--device cuda``) it
also prints the share of the GPU's peak given with ``--gpu-peak-tflops``.

    python benchmarks/packed.py [--sizes 1 16 64 256 1024] [--steps 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from mixup_core import TrialConfig
from mixup_core.packed import Pack
from mixup_core.training import Trainer


def step_flops(config: TrialConfig) -> float:
    d = config.data
    rows, cols = d.n_train * d.num_patches, d.num_classes * config.model.width
    return 2 * (2.0 * rows * d.dim * cols)


def members(size: int, datasets: int, precision: str) -> list[TrialConfig]:
    base = TrialConfig().replace(**{"optim.epochs": 10_000, "log_every": 10_000,
                                    "precision": precision})
    alphas = [0.5 + 0.01 * i for i in range(size)]
    return [base.replace(seed=i % datasets, **{"mixup.alpha": a}) for i, a in enumerate(alphas)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds_per_step(step: Callable[[], object], steps: int, device: torch.device) -> float:
    """Mean seconds of ``step`` over ``steps`` calls, after one warm-up call."""
    step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - start) / steps


def unpacked_seconds(config: TrialConfig, steps: int, device: torch.device) -> float:
    return seconds_per_step(Trainer(config, device=device).train_epoch, steps, device)


def packed_seconds(configs: list[TrialConfig], steps: int, device: torch.device) -> float:
    return seconds_per_step(Pack(configs, device=device).advance, steps, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 256, 1024])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--datasets", type=int, default=3, help="data sets (seeds) in a pack")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--gpu-peak-tflops", type=float, default=None,
                        help="the GPU's dense peak (e.g. 989 for an H100/H200 in bfloat16)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, {args.threads} thread(s), {args.steps} timed steps per point")
    for precision in ("float32", "bfloat16"):
        one = members(1, 1, precision)[0]
        flops = step_flops(one)
        alone = unpacked_seconds(one, max(args.steps, 20), device)
        print(f"\n{precision}: unpacked Trainer {alone * 1e3:.3f} ms per member-step "
              f"({flops / alone / 1e9:.1f} GFLOP/s)")
        print(f"{'B':>6} {'member-steps/s':>15} {'ms/member-step':>15} {'GFLOP/s':>9} "
              f"{'vs unpacked':>12}" + ("  share of peak" if args.gpu_peak_tflops else ""))
        for size in args.sizes:
            seconds = packed_seconds(members(size, min(args.datasets, size), precision),
                                     args.steps, device)
            per_member = seconds / size
            rate = flops / per_member / 1e9
            line = (f"{size:>6} {1 / per_member:>15.1f} {per_member * 1e3:>15.3f} {rate:>9.1f} "
                    f"{alone / per_member:>11.2f}x")
            if args.gpu_peak_tflops:
                line += f"  {100 * rate / (args.gpu_peak_tflops * 1e3):>12.2f}%"
            print(line, flush=True)


if __name__ == "__main__":
    main()
