"""Image data sets as trial data: load a source, cap it, apply the view, keep uint8 pixels.

:func:`build_image_task` turns a registered :class:`~mixup_core.data.image_sources.ImageSource`
into :class:`~mixup_core.data.base.TaskData` whose inputs stay uint8 (n, C, H, W): the trainer
moves them to its device once and augments and normalises each batch there
(:mod:`mixup_core.data.device_batches`). Random choices, in this order, come from the DATA
generator: the ``max_train`` subset, the ``max_test`` subset, then the view's subsets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mixup_core.data.base import ImageSpec, TaskData
from mixup_core.data.image_sources import ImageSource, LabelledImages, channel_stats
from mixup_core.data.views import plan_view, random_subset

if TYPE_CHECKING:
    from mixup_core.config import DataConfig


def _cap(n: int, limit: int | None, generator: torch.Generator) -> Tensor:
    everything = torch.arange(n)
    if limit is None or limit >= n:
        return everything
    return random_subset(everything, limit, generator).sort().values


def image_spec(source: ImageSource, images: LabelledImages) -> ImageSpec:
    """The source's augmentation and normalisation (statistics of the full training split)."""
    mean, std = source.mean, source.std
    if mean is None or std is None:
        mean, std = channel_stats(images.x_train)
    return ImageSpec(mean=mean, std=std, crop_padding=source.crop_padding, flip=source.flip)


def build_image_task(source: ImageSource, config: DataConfig, generator: torch.Generator) -> TaskData:
    """Loads ``source`` and applies ``max_train``/``max_test`` and ``data.view`` to it."""
    images = source.load(config)
    keep_train = _cap(len(images.y_train), config.max_train, generator)
    keep_test = _cap(len(images.y_test), config.max_test, generator)
    y_train, y_test = images.y_train[keep_train], images.y_test[keep_test]
    plan = plan_view(config.view, y_train, y_test, num_classes=len(images.classes),
                     rho=config.rho, generator=generator)
    train = keep_train[plan.train_index]
    test = keep_test[plan.test_index]
    y_train, y_test = images.y_train[train], images.y_test[test]
    return TaskData(
        x_train=images.x_train[train], y_train=plan.label_map[y_train],
        rare_train=plan.rare_class[y_train],
        x_test=images.x_test[test], y_test=plan.label_map[y_test],
        rare_test=plan.rare_class[y_test],
        num_classes=plan.num_classes,
        image=image_spec(source, images),
    )


def image_builder(source: ImageSource) -> Callable[[DataConfig, torch.Generator], TaskData]:
    """A DATASETS entry for ``source``."""

    def build(config: DataConfig, generator: torch.Generator) -> TaskData:
        return build_image_task(source, config, generator)

    return build
