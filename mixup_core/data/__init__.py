"""Data sets, by registered name. Each entry builds a :class:`TaskData` from a DataConfig."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from mixup_core.data.base import TaskData
from mixup_core.data.feature_noise import make_feature_noise
from mixup_core.registry import Registry

if TYPE_CHECKING:
    from mixup_core.config import DataConfig

DatasetBuilder = Callable[["DataConfig", torch.Generator], TaskData]
DATASETS: Registry[DatasetBuilder] = Registry("data set")
DATASETS.register("feature_noise")(make_feature_noise)


def build_data(config: DataConfig, generator: torch.Generator) -> TaskData:
    """Builds the data set named ``config.name``."""
    return DATASETS.get(config.name)(config, generator)


__all__ = ["DATASETS", "TaskData", "build_data", "make_feature_noise"]
