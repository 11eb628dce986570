"""Evaluation metrics over a member axis, the same for both engines.

Every function takes the logits of B' members at once, (B', N, K), and returns one value per
member, (B',); :func:`rows` turns the columns into each member's metrics dict. Accuracies on an
empty subgroup are NaN (a split without rare points has no rare accuracy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

Metrics = dict[str, float]


def split_columns(split: str, logits: Tensor, y: Tensor, rare: Tensor) -> dict[str, Tensor]:
    """``split``'s metrics of the members' logits (B', N, K) on labels ``y`` and rare flags
    ``rare`` (both (B', N), or (N,) shared by every member): ``train/acc`` for the training
    split; loss, accuracy and common and rare accuracy for the others."""
    b, n = logits.shape[:2]
    y = y.expand(b, n)
    correct = (logits.argmax(dim=-1) == y).float()
    if split == "train":
        return {"train/acc": correct.mean(dim=1)}
    picked = F.log_softmax(logits, dim=-1).gather(2, y.unsqueeze(2)).squeeze(2)
    rare_mask = rare.expand(b, n).float()
    columns = {f"{split}/loss": -picked.mean(dim=1), f"{split}/acc": correct.mean(dim=1)}
    for name, mask in (("acc_common", 1 - rare_mask), ("acc_rare", rare_mask)):
        columns[f"{split}/{name}"] = (correct * mask).sum(dim=1) / mask.sum(dim=1)
    return columns


def rows(columns: dict[str, Tensor]) -> list[Metrics]:
    """Per-member dicts of the (B',) ``columns``, in one transfer from the device."""
    names = list(columns)
    values = torch.stack([columns[name].float() for name in names], dim=1).tolist()
    return [dict(zip(names, row, strict=True)) for row in values]


__all__ = ["Metrics", "rows", "split_columns"]
