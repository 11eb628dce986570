"""Evaluation metrics over a member axis, the same for both engines.

Every function takes the logits of B' members at once, (B', N, K), and returns one value per
member, (B',); :func:`rows` turns the columns into each member's metrics dict. Accuracies on an
empty subgroup are NaN (a split without rare points has no rare accuracy).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from mixup_core import plugins

Metrics = dict[str, float]


def split_columns(split: str, logits: Tensor, y: Tensor, rare: Tensor,
                  noise: Tensor | None = None) -> dict[str, Tensor]:
    """``split``'s metrics of the members' logits (B', N, K) on labels ``y`` and rare flags
    ``rare`` (both (B', N), or (N,) shared by every member): ``train/acc`` for the training
    split; loss, accuracy and common and rare accuracy for the others, and where the points
    carry feature noise of a class ``noise`` (same shape, -1: none), ``rare_err_noise``: the
    share of the wrongly classified rare points that were given that class."""
    b, n = logits.shape[:2]
    y = y.expand(b, n)
    predicted = logits.argmax(dim=-1)
    correct = (predicted == y).float()
    if split == "train":
        return {"train/acc": correct.mean(dim=1)}
    picked = F.log_softmax(logits, dim=-1).gather(2, y.unsqueeze(2)).squeeze(2)
    rare_mask = rare.expand(b, n).float()
    columns = {f"{split}/loss": -picked.mean(dim=1), f"{split}/acc": correct.mean(dim=1)}
    for name, mask in (("acc_common", 1 - rare_mask), ("acc_rare", rare_mask)):
        columns[f"{split}/{name}"] = (correct * mask).sum(dim=1) / mask.sum(dim=1)
    if noise is not None:
        wrong = rare_mask * (1 - correct)
        to_noise = (predicted == noise.expand(b, n)).float() * wrong
        columns[f"{split}/rare_err_noise"] = to_noise.sum(dim=1) / wrong.sum(dim=1)
    columns |= plugins.metric_columns(split, logits, y, rare.expand(b, n))
    return columns


def accuracy(logits: Tensor, y: Tensor) -> Tensor:
    """(B',) accuracy of logits (B', N, K) on labels ``y`` ((B', N) or (N,)); NaN when N = 0."""
    return (logits.argmax(dim=-1) == y.expand(logits.shape[:2])).float().mean(dim=1)


def ridge_transfer(train_features: Tensor, train_y: Tensor, train_mask: Tensor,
                   test_features: Tensor, test_y: Tensor, test_mask: Tensor,
                   num_classes: int, *, ridge: float = 1e-2) -> Tensor:
    """(B',) accuracy on the ``test_mask`` rows of a ridge readout fit, per member, on the
    ``train_mask`` rows: features (B', N, d), labels (B', N), masks (B', N) bool.

    The readout is closed-form ridge regression onto one-hot labels from centred features,
    penalty ``ridge`` times the mean feature variance; NaN where a member has fewer than two
    fitting rows or no test row.
    """
    m = train_mask.float().unsqueeze(2)
    count = m.sum(dim=1, keepdim=True)
    targets = F.one_hot(train_y, num_classes).float()
    mean_f = (train_features * m).sum(dim=1, keepdim=True) / count.clamp_min(1)
    mean_y = (targets * m).sum(dim=1, keepdim=True) / count.clamp_min(1)
    centred = (train_features - mean_f) * m
    gram = centred.transpose(1, 2) @ centred
    d = gram.shape[-1]
    scale = gram.diagonal(dim1=1, dim2=2).mean(dim=1).clamp_min(1e-12) * ridge
    eye = torch.eye(d, device=gram.device, dtype=gram.dtype)
    weights = torch.linalg.solve(gram + scale.view(-1, 1, 1) * eye,
                                 centred.transpose(1, 2) @ (targets - mean_y) * 1.0)
    scores = (test_features - mean_f) @ weights + mean_y
    hit = (scores.argmax(dim=-1) == test_y).float() * test_mask.float()
    out = hit.sum(dim=1) / test_mask.float().sum(dim=1)
    return torch.where(count.view(-1) >= 2, out, torch.full_like(out, math.nan))


def rows(columns: dict[str, Tensor]) -> list[Metrics]:
    """Per-member dicts of the (B',) ``columns``, in one transfer from the device."""
    names = list(columns)
    values = torch.stack([columns[name].float() for name in names], dim=1).tolist()
    return [dict(zip(names, row, strict=True)) for row in values]


__all__ = ["Metrics", "accuracy", "ridge_transfer", "rows", "split_columns"]
