"""Models, by registered name. Each entry builds an ``nn.Module`` from a ModelConfig.

``MODEL_INPUTS`` says what each model reads: ``patches`` (the feature-noise task's (n, P, d)
tensors) or ``images`` ((n, C, H, W) batches of an image data set); the trial config refuses a
model paired with data of the other kind. It checks both against :mod:`mixup_core.catalog`, which
names the same models with the same kinds (tests/core/test_catalog.py).

* ``patch_cnn``: the paper's two-layer patch CNN (closed-form gradient, mixes after layer one).
* ``preact_resnet18``: PreAct ResNet-18 of facebookresearch/mixup-cifar10, for 32×32 images.
* ``small_cnn``: a three-convolution network for digits and MNIST.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from mixup_core.catalog import InputKind
from mixup_core.data.base import TaskData
from mixup_core.models.patch_cnn import PatchCNN
from mixup_core.models.preact_resnet import PreActResNet18
from mixup_core.models.small_cnn import SmallCNN
from mixup_core.registry import Registry

if TYPE_CHECKING:
    from mixup_core.config import ModelConfig

ModelBuilder = Callable[["ModelConfig", TaskData, torch.Generator], nn.Module]
MODELS: Registry[ModelBuilder] = Registry("model")
MODEL_INPUTS: dict[str, InputKind] = {}


def _register(name: str, inputs: InputKind) -> Callable[[ModelBuilder], ModelBuilder]:
    def add(builder: ModelBuilder) -> ModelBuilder:
        MODELS.register(name)(builder)
        MODEL_INPUTS[name] = inputs
        return builder

    return add


@_register("patch_cnn", "patches")
def _patch_cnn(config: ModelConfig, data: TaskData, generator: torch.Generator) -> nn.Module:
    return PatchCNN(
        num_classes=data.num_classes, dim=data.x_train.shape[-1], width=config.width,
        power=config.power, init_std=config.init_std, generator=generator,
    )


@_register("preact_resnet18", "images")
def _preact_resnet18(config: ModelConfig, data: TaskData, generator: torch.Generator) -> nn.Module:
    return PreActResNet18(in_channels=data.x_train.shape[1], num_classes=data.num_classes,
                          channels=config.channels or 64, generator=generator)


@_register("small_cnn", "images")
def _small_cnn(config: ModelConfig, data: TaskData, generator: torch.Generator) -> nn.Module:
    return SmallCNN(in_channels=data.x_train.shape[1], num_classes=data.num_classes,
                    channels=config.channels or 32, generator=generator)


def build_model(config: ModelConfig, data: TaskData, generator: torch.Generator) -> nn.Module:
    """Builds the model named ``config.name`` for ``data``, initialised from ``generator``."""
    return MODELS.get(config.name)(config, data, generator)


__all__ = ["MODELS", "MODEL_INPUTS", "PatchCNN", "PreActResNet18", "SmallCNN", "build_model"]
