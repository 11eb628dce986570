"""The data a trial trains and evaluates on, whatever generated it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class ImageSpec:
    """How the images of a data set are normalised and augmented.

    Attributes:
        mean, std: per-channel statistics on the [0, 1] scale; inputs become (x/255 - mean)/std.
        crop_padding: zero padding on each side before a random crop back to the original size.
        flip: whether a random horizontal flip keeps the label (true for photos, not for digits).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int
    flip: bool


@dataclass(frozen=True)
class TaskData:
    """Train, validation and test tensors, plus what the diagnostics need.

    The validation split is what a sweep chooses configurations and epochs on; the test split
    is only reported. The two are disjoint and drawn from different seeded streams.

    Attributes:
        x_train, x_val, x_test: inputs; (n, P, d) float patches for the feature-noise task,
            (n, C, H, W) uint8 images for image data sets (normalised batch by batch on the
            training device).
        y_train, y_val, y_test: integer class labels, shape (n,).
        rare_train, rare_val, rare_test: boolean masks of the points that carry a rare feature
            (image data: that belong to a rare class of the data set's view).
        num_classes: K.
        common_features, rare_features: (K, d) feature vectors, when the task has them.
        train_noise: the noise part of every training patch, shape of ``x_train``, when known.
        image: normalisation and augmentation of image data; None for the patch task.
        noise_train, noise_val, noise_test: the class whose feature noise each point carries
            (-1: none), when the data has feature noise; ``*/rare_err_noise`` is the share of
            rare errors that predict it.
        probes: named probe sets, name -> (inputs, labels), evaluated like a split at every
            logged epoch (``probe/<name>``: the accuracy on it); see :mod:`mixup_core.data.planted`.
    """

    x_train: Tensor
    y_train: Tensor
    rare_train: Tensor
    x_test: Tensor
    y_test: Tensor
    rare_test: Tensor
    x_val: Tensor
    y_val: Tensor
    rare_val: Tensor
    num_classes: int
    common_features: Tensor | None = None
    rare_features: Tensor | None = None
    train_noise: Tensor | None = None
    image: ImageSpec | None = None
    noise_train: Tensor | None = None
    noise_val: Tensor | None = None
    noise_test: Tensor | None = None
    probes: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> TaskData:
        moved: dict[str, Any] = {
            f.name: value.to(device)
            for f in dataclasses.fields(self)
            if isinstance(value := getattr(self, f.name), Tensor)
        }
        moved["probes"] = {name: (x.to(device), y.to(device))
                           for name, (x, y) in self.probes.items()}
        return dataclasses.replace(self, **moved)
