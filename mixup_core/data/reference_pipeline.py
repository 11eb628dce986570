"""The conventional input pipeline, kept as the reference for the fast path.

A torchvision-style ``Dataset`` that hands out one PIL image at a time through per-sample
``transforms`` (``RandomCrop(padding=p)``, ``RandomHorizontalFlip``, ``ToTensor``,
``Normalize``), batched by a ``DataLoader``: how facebookresearch/mixup-cifar10 feeds its model.
The trainer never uses it; ``tests/core/test_images.py`` checks the fast path of
:mod:`mixup_core.data.device_batches` against it and ``benchmarks/image_pipeline.py`` times both.
torchvision's transforms draw from torch's global generator, which is why the fast path does not
use them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from mixup_core.data.base import ImageSpec


def conventional_transform(spec: ImageSpec, *, size: tuple[int, int], augment: bool) -> Any:
    """The per-sample ``transforms.Compose`` of the reference recipe for images of ``size``."""
    from torchvision import transforms

    steps: list[Any] = []
    if augment and spec.crop_padding > 0:
        steps.append(transforms.RandomCrop(size, padding=spec.crop_padding))
    if augment and spec.flip:
        steps.append(transforms.RandomHorizontalFlip())
    steps += [transforms.ToTensor(), transforms.Normalize(spec.mean, spec.std)]
    return transforms.Compose(steps)


class PerSampleImages(Dataset[tuple[Tensor, int]]):
    """(image, label) pairs: each uint8 CHW image goes through PIL and ``transform`` on access."""

    def __init__(self, images: Tensor, labels: Tensor, transform: Any) -> None:
        from torchvision.transforms.functional import to_pil_image

        self.images, self.labels = images.cpu(), labels.cpu().tolist()
        self.transform = transform
        self._to_pil = to_pil_image

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.transform(self._to_pil(self.images[index])), self.labels[index]


def conventional_loader(
    images: Tensor, labels: Tensor, spec: ImageSpec, *, augment: bool, batch_size: int,
    generator: torch.Generator | None = None, num_workers: int = 0,
) -> DataLoader[tuple[Tensor, int]]:
    """A shuffling ``DataLoader`` over :class:`PerSampleImages` with the reference transforms."""
    size = (int(images.shape[-2]), int(images.shape[-1]))
    dataset = PerSampleImages(images, labels, conventional_transform(spec, size=size, augment=augment))
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator,
                      num_workers=num_workers)
