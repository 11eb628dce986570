"""The data a trial trains and evaluates on, whatever generated it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class TaskData:
    """Train and test tensors, plus what the diagnostics need.

    Attributes:
        x_train, x_test: inputs; (n, P, d) patches for the feature-noise task.
        y_train, y_test: integer class labels, shape (n,).
        rare_train, rare_test: boolean masks of the points that carry a rare feature.
        num_classes: K.
        common_features, rare_features: (K, d) feature vectors, when the task has them.
        train_noise: the noise part of every training patch, shape of ``x_train``, when known.
    """

    x_train: Tensor
    y_train: Tensor
    rare_train: Tensor
    x_test: Tensor
    y_test: Tensor
    rare_test: Tensor
    num_classes: int
    common_features: Tensor | None = None
    rare_features: Tensor | None = None
    train_noise: Tensor | None = None

    def to(self, device: torch.device | str) -> TaskData:
        moved: dict[str, Any] = {
            f.name: value.to(device)
            for f in dataclasses.fields(self)
            if isinstance(value := getattr(self, f.name), Tensor)
        }
        return dataclasses.replace(self, **moved)
