"""Views that change pixels, applied after the index views of :mod:`mixup_core.data.views`.

Each takes a split's uint8 images ``x`` (n, 1, H, W), labels ``y`` and rare flags after the
index view, and returns new images, labels, rare flags and each point's feature-noise class
(-1: none). Random choices come from the DATA generator for the training and test splits (in
that order, after the index view's) and from the VAL generator for the validation split.

* ``overlay`` (``data.overlay`` > 0 on ``rare_subclass``): every image also carries, at intensity
  ``overlay``, a common digit (the even class) of another super-class, chosen uniformly from the
  same split: ``clip(x + overlay · x_other)``. The other super-class is the point's feature-noise
  class.
* ``multi_view``: a fixed partner class π(c) for each class c (one random cycle through all
  classes, so never c itself, drawn once per data seed). Images get two channels. A training
  image of class c is ``((1 - w) · x, w · x_p)``: its own digit in channel 0 and a random image
  x_p of class π(c) from the training split in channel 1, with w uniform on [0,
  ``data.second_view``], drawn once per image. Validation and test images appear twice: with the
  first view only ``(x, 0)``, the protocol's test images, flagged rare (``*/acc_rare`` is the
  accuracy the published table reports), and with both views as in training, flagged common.
  The feature-noise class of an image of class c is π⁻¹(c), the class whose second view is a c.
* ``colored`` (the negative control, Colored MNIST): the label is digit >= 5, flipped for 25 %
  of the images; the colour (channel 0 or 1 of two) is the label, flipped for 15 % of the
  training and validation images and for 90 % of the test images. A colour that disagrees with
  the label marks the image rare; the colour's class is its feature-noise class.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

LABEL_NOISE = 0.25
COLOUR_FLIP = {"train": 0.15, "val": 0.15, "test": 0.9}


@dataclass(frozen=True)
class Split:
    x: Tensor
    y: Tensor
    rare: Tensor
    noise: Tensor | None = None


def _random_member(y: Tensor, wanted: Tensor, generator: torch.Generator) -> Tensor:
    """For each entry of ``wanted`` (classes), a uniformly random position i with y[i] == it."""
    order = torch.argsort(y, stable=True)
    counts = torch.bincount(y, minlength=int(wanted.max()) + 1 if len(wanted) else 1)
    offsets = torch.cumsum(counts, 0) - counts
    if len(wanted) and bool((counts[wanted] == 0).any()):
        missing = sorted(set(wanted[counts[wanted] == 0].tolist()))
        raise ValueError(f"no image of class(es) {missing} to draw from")
    which = (torch.rand(len(wanted), generator=generator, dtype=torch.float64)
             * counts[wanted]).long()
    return order[offsets[wanted] + which]


def overlay(split: Split, intensity: float, num_classes: int,
            generator: torch.Generator) -> Split:
    """``split`` with another super-class's common digit overlaid on every image."""
    n = len(split.y)
    other = (split.y + torch.randint(1, num_classes, (n,), generator=generator)) % num_classes
    commons = torch.nonzero(~split.rare).flatten()
    source = commons[_random_member(split.y[commons], other, generator)]
    mixed = split.x.float() + intensity * split.x[source].float()
    return Split(mixed.clamp(0, 255).round().to(torch.uint8), split.y, split.rare, other)


def partner_cycle(num_classes: int, generator: torch.Generator) -> Tensor:
    """π as a (C,) tensor: one random cycle through every class (a derangement)."""
    order = torch.randperm(num_classes, generator=generator)
    partner = torch.empty(num_classes, dtype=torch.int64)
    partner[order] = order.roll(-1)
    return partner


def _two_views(x: Tensor, partner_x: Tensor, weight: Tensor) -> Tensor:
    w = weight.view(-1, 1, 1, 1)
    first = (1 - w) * x.float()
    second = w * partner_x.float()
    return torch.cat([first, second], dim=1).round().clamp(0, 255).to(torch.uint8)


def multi_view(split: Split, partner: Tensor, max_weight: float, generator: torch.Generator,
               *, training: bool) -> Split:
    """``split`` in the two-view protocol (see the module doc)."""
    n = len(split.y)
    source = _random_member(split.y, partner[split.y], generator)
    weight = torch.rand(n, generator=generator) * max_weight
    both = _two_views(split.x, split.x[source], weight)
    noise = torch.argsort(partner)[split.y]  # π⁻¹(y)
    if training:
        return Split(both, split.y, torch.zeros(n, dtype=torch.bool), noise)
    alone = torch.cat([split.x, torch.zeros_like(split.x)], dim=1)
    return Split(torch.cat([alone, both]), split.y.repeat(2),
                 torch.cat([torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)]),
                 noise.repeat(2))


def colored(split: Split, flip: float, generator: torch.Generator) -> Split:
    """Colored MNIST on ``split`` (digit labels 0..9; see the module doc)."""
    n = len(split.y)
    label = (split.y >= 5).long() ^ (torch.rand(n, generator=generator) < LABEL_NOISE).long()
    colour = label ^ (torch.rand(n, generator=generator) < flip).long()
    x = torch.zeros(n, 2, *split.x.shape[2:], dtype=torch.uint8)
    x[torch.arange(n), colour] = split.x[:, 0]
    return Split(x, label, colour != label, colour)


__all__ = ["COLOUR_FLIP", "LABEL_NOISE", "Split", "colored", "multi_view", "overlay",
           "partner_cycle"]
