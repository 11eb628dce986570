"""A small convolutional network for digits and MNIST.

Three 3×3 convolutions with batch norm and ReLU (``channels``, 2·``channels``, 4·``channels``),
a 2×2 max pool after each of the first two, global average pooling and a linear classifier:
0.1 M weights at the default 32 channels. Pooling early keeps 28×28 MNIST cheap on a CPU (about
7.5 MFLOP per image forward); the 8×8 digits end at 2×2 before the global pool.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mixup_core.models.initialisation import materialise


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


class SmallCNN(nn.Module):
    """conv-BN-ReLU, pool, conv-BN-ReLU, pool, conv-BN-ReLU, global average pool, linear."""

    def __init__(self, *, in_channels: int, num_classes: int, channels: int = 32,
                 generator: torch.Generator) -> None:
        super().__init__()
        with torch.device("meta"):  # no storage and no random draws until materialise
            self.features = nn.Sequential(
                *_conv_bn_relu(in_channels, channels),
                nn.MaxPool2d(2),
                *_conv_bn_relu(channels, 2 * channels),
                nn.MaxPool2d(2),
                *_conv_bn_relu(2 * channels, 4 * channels),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            )
            self.linear = nn.Linear(4 * channels, num_classes)
        materialise(self, generator)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.features(x))
