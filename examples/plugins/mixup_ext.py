"""An example plugin: a decoupled label scheme, a data set with its own rare subgroup and a
metric, registered through mixup_core.plugins (README, "Bring your own").

Named in a sweep spec (``plugins: [./mixup_ext.py]``, see spec.yaml beside it), it is imported by
the driver and, shipped by Ray's runtime environment, by every trial process on every node.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mixup_core import plugins
from mixup_core.data import LabelledImages
from mixup_core.data.image_sources import load_digits_images


@plugins.label_scheme("sigmoid", param="k", default=8.0, range=(0.0, 100.0))
def sigmoid(lam, *, param, resample):
    """g = σ(k(λ - ½)) rescaled to [0, 1]: between `same` (k → 0) and `dominant` (k → ∞)."""
    if param < 1e-3:  # the limit k → 0 is `same`
        return lam
    low, high = torch.sigmoid(torch.tensor(-param / 2)), torch.sigmoid(torch.tensor(param / 2))
    return ((torch.sigmoid(param * (lam - 0.5)) - low) / (high - low)).clamp(0, 1)


def _faint(x: torch.Tensor, y: torch.Tensor, share: float = 0.2) -> torch.Tensor:
    """The rare subgroup: the images of each class with the least ink (lowest ``share``)."""
    ink = x.float().sum(dim=(1, 2, 3))
    rare = torch.zeros(len(y), dtype=torch.bool)
    for c in torch.unique(y).tolist():
        members = torch.nonzero(y == c).flatten()
        cut = torch.quantile(ink[members], share)
        rare[members[ink[members] <= cut]] = True
    return rare


@plugins.dataset("digits_faint", crop_padding=1)
def digits_faint(config) -> LabelledImages:
    """scikit-learn's digits; the faintest 20 % of each class (least ink) are the rare subgroup."""
    digits = load_digits_images(config)
    return LabelledImages(digits.x_train, digits.y_train, digits.x_test, digits.y_test,
                          digits.classes, rare_train=_faint(digits.x_train, digits.y_train),
                          rare_test=_faint(digits.x_test, digits.y_test))


@plugins.metric("brier")
def brier(logits, labels, rare) -> float:
    """Multi-class Brier score: mean squared distance of the softmax to the one-hot label."""
    one_hot = F.one_hot(labels, logits.shape[-1]).float()
    return float(((logits.softmax(dim=-1) - one_hot) ** 2).sum(dim=-1).mean())
