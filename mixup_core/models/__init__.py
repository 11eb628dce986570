"""Models, by registered name. Each entry builds an ``nn.Module`` from a ModelConfig."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from mixup_core.data.base import TaskData
from mixup_core.models.patch_cnn import PatchCNN
from mixup_core.registry import Registry

if TYPE_CHECKING:
    from mixup_core.config import ModelConfig

ModelBuilder = Callable[["ModelConfig", TaskData, torch.Generator], nn.Module]
MODELS: Registry[ModelBuilder] = Registry("model")


@MODELS.register("patch_cnn")
def _patch_cnn(config: ModelConfig, data: TaskData, generator: torch.Generator) -> nn.Module:
    return PatchCNN(
        num_classes=data.num_classes, dim=data.x_train.shape[-1], width=config.width,
        power=config.power, init_std=config.init_std, generator=generator,
    )


def build_model(config: ModelConfig, data: TaskData, generator: torch.Generator) -> nn.Module:
    """Builds the model named ``config.name`` for ``data``, initialised from ``generator``."""
    return MODELS.get(config.name)(config, data, generator)


__all__ = ["MODELS", "PatchCNN", "build_model"]
