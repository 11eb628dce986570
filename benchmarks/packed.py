"""Packed against unpacked training of the default feature-noise task, member-step by member-step.

For each pack size B it trains B Mixup members (α = 1, `same` labels, seeds 0..B-1 spread over
``--datasets`` data sets, so B/datasets members share each GEMM) for ``--steps`` full-batch GD
steps with no evaluation, in both forms of the packed step (``gram``: W = s·W₀ + Cᵀ X, one
(nP)² GEMM; ``direct``: W itself, two nP·d GEMMs), and prints member-steps per second, the
GFLOP/s of the GEMMs the step really runs, and the ratio to the unpacked ``Trainer`` measured in
the same process, in float32 (the baseline every ratio is against) and in the same precision. On
CUDA (when present, or ``--device cuda``) it also prints the share of the GPU's peak given with
``--gpu-peak-tflops``.

    python benchmarks/packed.py [--sizes 1 16 64 256 1024] [--steps 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import torch
from _reference import Trainer  # the unpacked oracle (tests/core/reference_trainer.py)

from mixup_core import TrialConfig
from mixup_core.training import Pack


def step_flops(config: TrialConfig, gram: bool) -> float:
    """GEMM FLOPs of one member-step: Z = X Wᵀ and ∇W = Rᵀ X, or Z = G C in the Gram form."""
    d = config.data
    rows, cols = d.n_train * d.num_patches, d.num_classes * config.model.width
    return 2.0 * rows * rows * cols if gram else 2 * (2.0 * rows * d.dim * cols)


def members(size: int, datasets: int, precision: str) -> list[TrialConfig]:
    base = TrialConfig().replace(**{"optim.epochs": 10_000, "log_every": 10_000,
                                    "precision": precision})
    alphas = [0.5 + 0.01 * i for i in range(size)]
    return [base.replace(seed=i % datasets, **{"mixup.alpha": a}) for i, a in enumerate(alphas)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds_per_step(step: Callable[[], object], steps: int, device: torch.device,
                     repeats: int = 3) -> float:
    """Seconds of one ``step`` call: the best of ``repeats`` means over ``steps`` calls, after
    one warm-up call (the best of a few runs is what a shared, noisy machine reproduces)."""
    step()
    sync(device)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync(device)
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def unpacked_seconds(config: TrialConfig, steps: int, device: torch.device) -> float:
    return seconds_per_step(Trainer(config, device=device).train_epoch, steps, device)


def packed_seconds(configs: list[TrialConfig], steps: int, device: torch.device,
                   gram: bool) -> float:
    return seconds_per_step(Pack(configs, device=device, gram=gram).advance, steps, device)


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
    f32 = members(1, 1, "float32")[0]
    for precision in ("float32", "bfloat16"):
        one = members(1, 1, precision)[0]
        alone = unpacked_seconds(one, max(args.steps, 20), device)
        print(f"\n{precision}: unpacked Trainer {alone * 1e3:.3f} ms per member-step "
              f"({step_flops(one, False) / alone / 1e9:.1f} GFLOP/s); the float32 baseline is "
              f"measured again right before each point")
        print(f"{'form':>6} {'B':>6} {'member-steps/s':>15} {'ms/member-step':>15} "
              f"{'GEMM GFLOP/s':>13} {'unpacked f32 ms':>16} {'vs unpacked f32':>16} "
              f"{'vs unpacked same':>17}"
              + ("  share of peak" if args.gpu_peak_tflops else ""))
        for gram in (True, False):
            flops = step_flops(one, gram)
            for size in args.sizes:
                baseline = unpacked_seconds(f32, max(args.steps, 20), device)
                same = baseline if precision == "float32" else unpacked_seconds(
                    one, max(args.steps, 20), device)
                seconds = packed_seconds(members(size, min(args.datasets, size), precision),
                                         args.steps, device, gram)
                per_member = seconds / size
                rate = flops / per_member / 1e9
                line = (f"{'gram' if gram else 'direct':>6} {size:>6} {1 / per_member:>15.1f} "
                        f"{per_member * 1e3:>15.3f} {rate:>13.1f} {baseline * 1e3:>16.3f} "
                        f"{baseline / per_member:>15.2f}x "
                        f"{same / per_member:>16.2f}x")
                if args.gpu_peak_tflops:
                    line += f"  {100 * rate / (args.gpu_peak_tflops * 1e3):>12.2f}%"
                print(line, flush=True)


if __name__ == "__main__":
    main()
