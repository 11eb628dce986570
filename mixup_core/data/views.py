"""Views of a labelled data set that make some classes rare, chosen as index sets.

A view never touches pixels: it says which training and test images a trial uses, which label
each original class becomes and which classes count as rare (``test/acc_rare`` is the accuracy
on those). Every random choice comes from the trial's DATA generator, except those of the
validation split (:func:`evaluation_index`), which come from its VAL generator.

* ``none``: every image, every class as it is, nothing rare.
* ``rare_subclass``: classes 2s and 2s+1 form super-class s, the label the model predicts. Class
  2s is the common member and keeps all its training images; class 2s+1 is the rare member and
  keeps ``round(rho · n_common)`` of them, a random subset. The test set is balanced: for each
  super-class as many rare as common images (the smaller count of the two, a random subset of
  the larger), so ``test/acc_rare`` and ``test/acc_common`` have the same support. With an odd
  number of classes the last one is left out.
* ``long_tail``: the labels stay; the tail, classes ``c >= ceil(C/2)`` (5..9 of 10), keeps
  ``round(rho · n_c)`` of its training images and counts as rare. The test set stays whole.
* ``multi_view``, ``colored``: every image, as ``none``; their work is on the pixels
  (:mod:`mixup_core.data.pixel_views`), as is ``data.overlay`` on ``rare_subclass``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from mixup_core.errors import ConfigError


@dataclass(frozen=True)
class ViewPlan:
    """Which images a trial uses and how their classes are read.

    Attributes:
        train_index, test_index: sorted indices into the data set's training and test splits.
        label_map: (C,) int64, original class -> the label trained on (-1 for a class left out).
        rare_class: (C,) bool, the original classes whose images count as rare.
        num_classes: how many labels the model predicts.
    """

    train_index: Tensor
    test_index: Tensor
    label_map: Tensor
    rare_class: Tensor
    num_classes: int


def keep_count(rho: float, n: int) -> int:
    """``round(rho · n)`` with halves rounded up, never more than ``n``."""
    return min(n, math.floor(rho * n + 0.5))


def random_subset(index: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """``size`` entries of ``index`` chosen uniformly without replacement."""
    return index[torch.randperm(len(index), generator=generator)[:size]]


def _members(y: Tensor, c: int) -> Tensor:
    return torch.nonzero(y == c).flatten()


def _sorted(parts: list[Tensor]) -> Tensor:
    return torch.cat(parts).sort().values if parts else torch.zeros(0, dtype=torch.int64)


def full_view(y_train: Tensor, y_test: Tensor, *, num_classes: int) -> ViewPlan:
    """Every image, every class, nothing rare."""
    return ViewPlan(torch.arange(len(y_train)), torch.arange(len(y_test)),
                    torch.arange(num_classes), torch.zeros(num_classes, dtype=torch.bool),
                    num_classes)


def rare_subclass_view(
    y_train: Tensor, y_test: Tensor, *, num_classes: int, rho: float, generator: torch.Generator
) -> ViewPlan:
    """Super-classes of two: 2s common, 2s+1 rare with fraction ``rho`` (see the module doc)."""
    pairs = num_classes // 2
    if pairs < 2:
        raise ConfigError(f"data.view: rare_subclass needs at least 4 classes, got {num_classes}")
    label_map = torch.full((num_classes,), -1, dtype=torch.int64)
    label_map[: 2 * pairs] = torch.arange(2 * pairs) // 2
    rare_class = torch.zeros(num_classes, dtype=torch.bool)
    rare_class[1 : 2 * pairs : 2] = True
    train = []
    for s in range(pairs):
        common, rare = _members(y_train, 2 * s), _members(y_train, 2 * s + 1)
        train += [common, random_subset(rare, keep_count(rho, len(common)), generator)]
    test = _balanced_pairs(y_test, pairs, generator)
    return ViewPlan(_sorted(train), test, label_map, rare_class, pairs)


def _balanced_pairs(y: Tensor, pairs: int, generator: torch.Generator) -> Tensor:
    """For each super-class, as many rare as common images (a random subset of the larger)."""
    chosen = []
    for s in range(pairs):
        common, rare = _members(y, 2 * s), _members(y, 2 * s + 1)
        support = min(len(common), len(rare))
        chosen += [random_subset(common, support, generator),
                   random_subset(rare, support, generator)]
    return _sorted(chosen)


def evaluation_index(view: str, y: Tensor, *, num_classes: int,
                     generator: torch.Generator) -> Tensor:
    """The images of an evaluation split (labels ``y``) that ``view`` keeps, as it keeps the test
    set's: the balanced pairs of ``rare_subclass``, everything otherwise."""
    if view == "rare_subclass":
        return _balanced_pairs(y, num_classes // 2, generator)
    return torch.arange(len(y))


def long_tail_view(
    y_train: Tensor, y_test: Tensor, *, num_classes: int, rho: float, generator: torch.Generator
) -> ViewPlan:
    """Classes ``c >= ceil(C/2)`` keep fraction ``rho`` of their training images and are rare."""
    rare_class = torch.arange(num_classes) >= (num_classes + 1) // 2
    train = []
    for c in range(num_classes):
        members = _members(y_train, c)
        if rare_class[c]:
            members = random_subset(members, keep_count(rho, len(members)), generator)
        train.append(members)
    return ViewPlan(_sorted(train), torch.arange(len(y_test)), torch.arange(num_classes),
                    rare_class, num_classes)


def plan_view(
    view: str, y_train: Tensor, y_test: Tensor, *, num_classes: int, rho: float,
    generator: torch.Generator,
) -> ViewPlan:
    """The :class:`ViewPlan` of ``view`` (``none``, ``rare_subclass`` or ``long_tail``)."""
    if view in ("none", "multi_view", "colored"):  # those two change pixels, not the index
        return full_view(y_train, y_test, num_classes=num_classes)
    if view == "rare_subclass":
        return rare_subclass_view(y_train, y_test, num_classes=num_classes, rho=rho,
                                  generator=generator)
    if view == "long_tail":
        return long_tail_view(y_train, y_test, num_classes=num_classes, rho=rho,
                              generator=generator)
    raise ConfigError(f"data.view: unknown view {view!r}")
