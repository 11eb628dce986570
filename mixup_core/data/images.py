"""Image data sets as trial data: load a source, cap it, apply the view, keep uint8 pixels.

:func:`build_image_task` turns a registered :class:`~mixup_core.data.image_sources.ImageSource`
into :class:`~mixup_core.data.base.TaskData` whose inputs stay uint8 (n, C, H, W): the trainer
moves them to its device once and augments and normalises each batch there
(:mod:`mixup_core.data.device_batches`). Random choices, in this order, come from the DATA
generator: the ``max_train`` subset, the ``max_test`` subset (each stratified by class, so
split sizes never depend on the seed), then the view's subsets, then the draws of a view that
changes pixels (:mod:`mixup_core.data.pixel_views`) for the training and the test split.

The validation split is held out of the (capped) training split before the view: a random
``round(data.val_fraction · n_c)`` images of each class c, at least one image of every class
staying in training, drawn from the VAL generator. The view then treats the validation images as
it treats the test images (``rare_subclass`` balances each pair), so validation estimates the
test metrics, rare classes included, without ever touching a test image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mixup_core.data.base import ImageSpec, TaskData
from mixup_core.data.image_sources import ImageSource, LabelledImages, channel_stats
from mixup_core.data.pixel_views import COLOUR_FLIP, Split, colored, multi_view, overlay, partner_cycle
from mixup_core.data.views import evaluation_index, keep_count, plan_view, random_subset

if TYPE_CHECKING:
    from mixup_core.config import DataConfig


def _cap(y: Tensor, limit: int | None, generator: torch.Generator) -> Tensor:
    """Sorted positions of a random ``limit`` of the labels ``y``, stratified: each class keeps
    its share (largest remainders), so the subset's class counts, and every split size built
    from them, are the same for every seed (the members of a pack then share their shapes)."""
    n = len(y)
    everything = torch.arange(n)
    if limit is None or limit >= n:
        return everything
    classes, counts = torch.unique(y, return_counts=True)
    quota = counts.double() * limit / n
    take = quota.floor().long()
    order = torch.argsort(quota - take, descending=True, stable=True)
    take[order[:limit - int(take.sum())]] += 1
    picked = [random_subset(torch.nonzero(y == c).flatten(), int(k), generator)
              for c, k in zip(classes.tolist(), take.tolist(), strict=True)]
    return torch.cat(picked).sort().values


def image_spec(source: ImageSource, images: LabelledImages) -> ImageSpec:
    """The source's augmentation and normalisation (statistics of the full training split)."""
    mean, std = source.mean, source.std
    if mean is None or std is None:
        mean, std = channel_stats(images.x_train)
    return ImageSpec(mean=mean, std=std, crop_padding=source.crop_padding, flip=source.flip)


def hold_out(y: Tensor, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(kept, held out): sorted positions into ``y``; ``round(fraction · n_c)`` random images of
    each class c are held out, never all of them."""
    kept, held = [], []
    for c in torch.unique(y).tolist():
        members = torch.nonzero(y == c).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        count = min(keep_count(fraction, len(members)), len(members) - 1)
        held.append(members[:count])
        kept.append(members[count:])
    empty = torch.zeros(0, dtype=torch.int64)
    return (torch.cat(kept).sort().values if kept else empty,
            torch.cat(held).sort().values if held else empty)


def build_image_task(source: ImageSource, config: DataConfig, generator: torch.Generator,
                     val_generator: torch.Generator) -> TaskData:
    """Loads ``source``, applies ``max_train``/``max_test``, holds out the validation split and
    applies ``data.view`` (see the module docstring for the order of the random choices)."""
    images = source.load(config)
    keep_train = _cap(images.y_train, config.max_train, generator)
    keep_test = _cap(images.y_test, config.max_test, generator)
    kept, held = hold_out(images.y_train[keep_train], config.val_fraction, val_generator)
    fit, held = keep_train[kept], keep_train[held]
    y_train, y_test = images.y_train[fit], images.y_test[keep_test]
    num_classes = len(images.classes)
    plan = plan_view(config.view, y_train, y_test, num_classes=num_classes,
                     rho=config.rho, generator=generator)
    train = fit[plan.train_index]
    test = keep_test[plan.test_index]
    val = held[evaluation_index(config.view, images.y_train[held], num_classes=num_classes,
                                generator=val_generator)]
    y_train, y_test, y_val = images.y_train[train], images.y_test[test], images.y_train[val]
    rare_train, rare_test, rare_val = (plan.rare_class[y_train], plan.rare_class[y_test],
                                       plan.rare_class[y_val])
    if config.view == "none" and images.rare_train is not None and images.rare_test is not None:
        # the data set's own subgroups (a plugin's data set, mixup_core.plugins.dataset)
        rare_train, rare_val = images.rare_train[train], images.rare_train[val]
        rare_test = images.rare_test[test]
    splits = {
        "train": Split(images.x_train[train], plan.label_map[y_train], rare_train),
        "test": Split(images.x_test[test], plan.label_map[y_test], rare_test),
        "val": Split(images.x_train[val], plan.label_map[y_val], rare_val),
    }
    splits, num_classes = _pixel_view(config, splits, plan.num_classes, generator, val_generator)
    spec = image_spec(source, images)
    if splits["train"].x.shape[1] != images.x_train.shape[1]:  # the view changed the channels
        spec = ImageSpec(*channel_stats(splits["train"].x), crop_padding=spec.crop_padding,
                         flip=spec.flip)
    train_, test_, val_ = splits["train"], splits["test"], splits["val"]
    return TaskData(
        x_train=train_.x, y_train=train_.y, rare_train=train_.rare,
        x_test=test_.x, y_test=test_.y, rare_test=test_.rare,
        x_val=val_.x, y_val=val_.y, rare_val=val_.rare,
        num_classes=num_classes, image=spec,
        noise_train=train_.noise, noise_val=val_.noise, noise_test=test_.noise,
    )


def _pixel_view(config: DataConfig, splits: dict[str, Split], num_classes: int,
                generator: torch.Generator, val_generator: torch.Generator,
                ) -> tuple[dict[str, Split], int]:
    """The pixel-changing part of ``data.view`` (:mod:`mixup_core.data.pixel_views`): the
    training and test splits drawn from ``generator``, the validation split from
    ``val_generator``."""
    draws = {"train": generator, "test": generator, "val": val_generator}
    if config.overlay > 0:
        return {name: overlay(split, config.overlay, num_classes, draws[name])
                for name, split in splits.items()}, num_classes
    if config.view == "multi_view":
        partner = partner_cycle(num_classes, generator)
        return {name: multi_view(split, partner, config.second_view, draws[name],
                                 training=name == "train")
                for name, split in splits.items()}, num_classes
    if config.view == "colored":
        return {name: colored(split, COLOUR_FLIP[name], draws[name])
                for name, split in splits.items()}, 2
    return splits, num_classes


def image_builder(
    source: ImageSource,
) -> Callable[[DataConfig, torch.Generator, torch.Generator], TaskData]:
    """A DATASETS entry for ``source``."""

    def build(config: DataConfig, generator: torch.Generator,
              val_generator: torch.Generator) -> TaskData:
        return build_image_task(source, config, generator, val_generator)

    return build
