"""The fast input path: batches augmented and normalised where the model runs.

Image data sets stay uint8 (n, C, H, W) on the training device. Each training batch is gathered
there, randomly cropped and flipped by one batched index gather (offsets and flips drawn from the
trial's AUGMENT generator), then converted to normalised floats in one fused multiply-add. No
per-sample Python, no worker processes, no host-to-device copies of pixels. The distribution
matches torchvision's ``RandomCrop(size, padding=p)`` + ``RandomHorizontalFlip()``: offsets
uniform in 0..2p on each axis, a flip with probability 1/2 (checked in ``tests/core/test_images.py``
against :mod:`mixup_core.data.reference_pipeline`).

As elsewhere, choosing (:func:`sample_crop_flip`) is separate from applying
(:func:`apply_crop_flip`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from mixup_core.data.base import ImageSpec, TaskData

#: Images per forward pass when evaluating (bounds memory on a full CIFAR split).
EVAL_CHUNK = 1024


@dataclass(frozen=True)
class CropFlipPlan:
    """Random crop offsets and flips for a batch.

    Attributes:
        top, left: (n,) int64 offsets of each crop inside the zero-padded image, in 0..2·padding.
        flip: (n,) bool, whether the crop is mirrored left to right.
    """

    top: Tensor
    left: Tensor
    flip: Tensor

    def to(self, device: torch.device | str) -> CropFlipPlan:
        return CropFlipPlan(self.top.to(device), self.left.to(device), self.flip.to(device))


def sample_crop_flip(n: int, *, padding: int, flip: bool, generator: torch.Generator) -> CropFlipPlan:
    """Draws crop offsets (uniform in 0..2·padding) and flips (probability 1/2 when ``flip``)."""
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    return CropFlipPlan(top=offsets[0], left=offsets[1], flip=flips)


def apply_crop_flip(x: Tensor, plan: CropFlipPlan, *, padding: int) -> Tensor:
    """Crops each image of ``x`` (n, C, H, W) at its offsets after zero padding, then flips it."""
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding)) if padding else x
    arange_h = torch.arange(h, device=x.device)
    arange_w = torch.arange(w, device=x.device)
    rows = plan.top[:, None] + arange_h  # (n, H)
    cols = plan.left[:, None] + torch.where(plan.flip[:, None], arange_w.flip(0), arange_w)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


class Normalise:
    """uint8 images -> (x/255 - mean)/std as float32, per channel, as one multiply-add."""

    def __init__(self, spec: ImageSpec, device: torch.device | str) -> None:
        std = torch.tensor(spec.std, dtype=torch.float32, device=device)
        mean = torch.tensor(spec.mean, dtype=torch.float32, device=device)
        self.scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1)
        self.shift = (-mean / std).view(1, -1, 1, 1)

    def __call__(self, x: Tensor) -> Tensor:
        return torch.addcmul(self.shift, x.to(torch.float32), self.scale)


class InputPipeline(Protocol):
    """Turns stored inputs into what the model reads; the trainer's only view of the data format.

    ``eval_chunk`` is how many inputs evaluation feeds at once (None: all of them).
    """

    eval_chunk: int | None

    def train_batch(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Model inputs for a training batch ``x`` (augmented when the pipeline augments)."""
        ...

    def eval_batch(self, x: Tensor) -> Tensor:
        """Model inputs for an evaluation chunk ``x`` (never augmented)."""
        ...


class TensorInputs:
    """Inputs already stored as the model reads them (the feature-noise patches)."""

    eval_chunk: int | None = None

    def train_batch(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return x

    def eval_batch(self, x: Tensor) -> Tensor:
        return x


class ImageInputs:
    """uint8 images -> optionally cropped and flipped, normalised float32 batches on ``device``.

    Args:
        spec: the data set's normalisation and augmentation.
        augment: whether training batches are cropped and flipped.
        device: where the images live and the batches are made.
        channels_last: hand the model NHWC-strided tensors (faster convolutions on CUDA).
    """

    eval_chunk: int | None = EVAL_CHUNK

    def __init__(self, spec: ImageSpec, *, augment: bool, device: torch.device | str,
                 channels_last: bool = False) -> None:
        self.spec = spec
        self.augment = augment and (spec.crop_padding > 0 or spec.flip)
        self.device = torch.device(device)
        self.normalise = Normalise(spec, device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def augment_batch(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """The random crop and flip of a uint8 batch (unchanged when augmentation is off)."""
        if not self.augment:
            return x
        plan = sample_crop_flip(x.shape[0], padding=self.spec.crop_padding, flip=self.spec.flip,
                                generator=generator)
        return apply_crop_flip(x, plan.to(self.device), padding=self.spec.crop_padding)

    def train_batch(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return self.eval_batch(self.augment_batch(x, generator))

    def eval_batch(self, x: Tensor) -> Tensor:
        return self.normalise(x).contiguous(memory_format=self.memory_format)


def make_inputs(data: TaskData, *, augment: bool, device: torch.device | str,
                channels_last: bool = False) -> InputPipeline:
    """The input pipeline for ``data``: images get :class:`ImageInputs`, patches pass through."""
    if data.image is None:
        return TensorInputs()
    return ImageInputs(data.image, augment=augment, device=device, channels_last=channels_last)
