"""PreAct ResNet-18 as in facebookresearch/mixup-cifar10 (``models/resnet.py``, ``ResNet18``).

A 3×3 stem convolution with batch norm and ReLU, four stages of two pre-activation basic blocks
(BN-ReLU-conv twice, 1×1 projection shortcuts where the shape changes) with 64, 128, 256 and 512
channels and strides 1, 2, 2, 2, global average pooling and a linear classifier: 11.2 M weights
for CIFAR-10. The reference pools with ``avg_pool2d(out, 4)``, which on 32×32 inputs is the global
average pool used here; the global pool also accepts other image sizes. ``channels`` scales every
stage (the reference is 64).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mixup_core.models.initialisation import materialise


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


class PreActBlock(nn.Module):
    """BN-ReLU-conv3×3, BN-ReLU-conv3×3, plus the (projected) pre-activated input.

    As in the reference, the shortcut starts from the pre-activation ReLU(BN(x)) even when it is
    the identity (He et al.'s identity-mapping block would add x itself).
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Conv2d(in_channels, channels, kernel_size=1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    """PreAct ResNet-18 for small images; logits (n, num_classes) for inputs (n, C, H, W)."""

    def __init__(self, *, in_channels: int, num_classes: int, channels: int = 64,
                 generator: torch.Generator) -> None:
        super().__init__()
        with torch.device("meta"):  # no storage and no random draws until materialise
            self.conv1 = conv3x3(in_channels, channels)
            self.bn1 = nn.BatchNorm2d(channels)
            stages, width = [], channels
            for i, stride in enumerate((1, 2, 2, 2)):
                out = channels * 2**i
                stages.append(nn.Sequential(PreActBlock(width, out, stride), PreActBlock(out, out)))
                width = out
            self.layers = nn.Sequential(*stages)
            self.linear = nn.Linear(width, num_classes)
        materialise(self, generator)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)
