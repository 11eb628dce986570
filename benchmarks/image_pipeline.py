"""Images per second of the fast on-device input path against a conventional torchvision one.

Both feed the same model (built from the same config and seed) with the same batch size and the
same augmentation (random crop with zero padding, plus horizontal flips where the data set has
them) and normalisation:

* fast: the Trainer's own epoch: uint8 images on the device, crop/flip by one batched gather,
  normalisation and Mixup batched (``mixup_core.data.device_batches``);
* conventional: a ``Dataset`` handing out PIL images through per-sample ``transforms`` and a
  shuffling ``DataLoader`` (``mixup_core.data.reference_pipeline``), then the same optimiser
  step (``Trainer.train_step``) on each batch it yields.

Two workloads: small_cnn on the digits (the whole training split) and PreAct ResNet-18 on a few
hundred random 32×32 RGB images with the CIFAR-10 recipe's augmentation. Every number comes from
this process. Epochs of the four variants are interleaved in rounds; rates are medians over
rounds and ratios are medians of the within-round ratios, so load that drifts (other jobs on a
shared machine) hits both sides of a ratio alike.

    python benchmarks/image_pipeline.py [--repeats 20] [--resnet-images 256] [--workers 0]
                                        [--threads 1] [--skip-resnet]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from _reference import Trainer  # the unpacked oracle (tests/core/reference_trainer.py)

from mixup_core import TrialConfig
from mixup_core.data import ImageSpec, TaskData
from mixup_core.data.cifar import CIFAR10_MEAN, CIFAR10_STD
from mixup_core.data.reference_pipeline import conventional_loader
from mixup_core.mixing import soft_targets

RECIPE = {"optim.lr": 0.1, "optim.momentum": 0.9, "optim.weight_decay": 1e-4,
          "optim.batch_size": 128, "data.augment": True, "optim.epochs": 10_000}


def random_cifar_like(n: int, *, seed: int = 0) -> TaskData:
    """``n`` random 32×32 RGB uint8 images, 10 balanced classes, CIFAR-10's augmentation."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.arange(n) % 10
    spec = ImageSpec(CIFAR10_MEAN, CIFAR10_STD, crop_padding=4, flip=True)
    none = torch.zeros(n, dtype=torch.bool)
    return TaskData(x, y, none, x[:10], y[:10], none[:10], x[:10], y[:10], none[:10],
                    num_classes=10, image=spec)


def fast_epoch(trainer: Trainer) -> Callable[[], int]:
    def run() -> int:
        trainer.train_epoch()
        return len(trainer.data.y_train)

    return run


def conventional_epoch(trainer: Trainer, *, mixing: bool, workers: int) -> Callable[[], int]:
    d = trainer.data
    spec = d.image
    assert spec is not None
    loader = conventional_loader(d.x_train, d.y_train, spec, augment=trainer.config.data.augment,
                                 batch_size=trainer.config.optim.batch_size or len(d.y_train),
                                 generator=torch.Generator().manual_seed(0), num_workers=workers)

    def run() -> int:
        seen = 0
        for x, y in loader:
            x, y = x.to(trainer.device), y.to(trainer.device)
            trainer.train_step(x, soft_targets(y, d.num_classes), mixing)
            seen += len(y)
        return seen

    return run


def rounds_of_rates(runs: dict[str, Callable[[], int]], *, repeats: int) -> dict[str, list[float]]:
    """Images/s of each run in each of ``repeats`` rounds; a round runs each once, the order
    reversed every other round so that no run always follows the same neighbour."""
    for run in runs.values():
        run()  # warm-up: allocator, first-call overheads
    rates: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else reversed(names):
            start = time.perf_counter()
            images = runs[name]()
            rates[name].append(images / (time.perf_counter() - start))
    return rates


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of the ratio within a round: load that drifts between rounds cancels."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def compare(label: str, config: TrialConfig, data: TaskData | None, *, repeats: int,
            workers: int) -> None:
    def trainer(alpha: float) -> Trainer:
        return Trainer(config.replace(**{"mixup.alpha": alpha}), data=data)

    erm = trainer(0.0)
    runs = {
        "fast, ERM": fast_epoch(erm),
        "fast, Mixup": fast_epoch(trainer(1.0)),
        "conventional, ERM": conventional_epoch(trainer(0.0), mixing=False, workers=workers),
        "conventional, Mixup": conventional_epoch(trainer(1.0), mixing=True, workers=workers),
    }
    n = len(erm.data.y_train)
    print(f"\n{label}: {n} training images, batch {config.optim.batch_size}, device {erm.device}, "
          f"{torch.get_num_threads()} threads, DataLoader workers {workers}", flush=True)
    rates = rounds_of_rates(runs, repeats=repeats)
    for name, values in rates.items():
        print(f"  {name:>20}: {statistics.median(values):9.1f} images/s "
              f"(median of {len(values)}; range {min(values):.1f}-{max(values):.1f})")
    for kind in ("ERM", "Mixup"):
        ratio = median_ratio(rates[f"fast, {kind}"], rates[f"conventional, {kind}"])
        print(f"  fast / conventional ({kind}): {ratio:.2f}x")
    change = median_ratio(rates["fast, Mixup"], rates["fast, ERM"]) - 1
    print(f"  fast path, Mixup on vs off: {100 * change:+.1f}% images/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--resnet-images", type=int, default=256)
    parser.add_argument("--workers", type=int, default=0,
                        help="DataLoader worker processes for the conventional pipeline")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: steadier on a shared machine)")
    parser.add_argument("--skip-resnet", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    digits = TrialConfig().replace(**{**RECIPE, "data.name": "digits", "model.name": "small_cnn"})
    compare("small_cnn on digits", digits, None, repeats=args.repeats, workers=args.workers)
    if not args.skip_resnet:
        resnet = TrialConfig().replace(**{**RECIPE, "data.name": "cifar10",
                                          "model.name": "preact_resnet18"})
        compare("preact_resnet18 on random 32×32 images", resnet,
                random_cifar_like(args.resnet_images), repeats=max(2, args.repeats // 5),
                workers=args.workers)


if __name__ == "__main__":
    main()
