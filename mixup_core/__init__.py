"""mixup_core: the paper's feature-noise task, decoupled λ schemes and early-stopped Mixup,
on the synthetic task and on real images (digits, MNIST-5k, CIFAR-10/100).

Pure PyTorch: this package never imports ray, mlflow, optuna or pyarrow. Every public name is
re-exported here and imported on first use, so ``mixup_core.config`` and ``mixup_core.catalog``
(reading and checking a trial config) import no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from mixup_core.catalog import METRIC_NAMES as METRIC_NAMES
    from mixup_core.config import ConfigError as ConfigError
    from mixup_core.config import DataConfig as DataConfig
    from mixup_core.config import MixupConfig as MixupConfig
    from mixup_core.config import ModelConfig as ModelConfig
    from mixup_core.config import OptimConfig as OptimConfig
    from mixup_core.config import TrialConfig as TrialConfig
    from mixup_core.config import flat_keys as flat_keys
    from mixup_core.config import flatten_nested as flatten_nested
    from mixup_core.config import from_flat as from_flat
    from mixup_core.config import to_flat as to_flat
    from mixup_core.errors import DataUnavailable as DataUnavailable
    from mixup_core.mixing import MixPlan as MixPlan
    from mixup_core.mixing import mix_inputs as mix_inputs
    from mixup_core.mixing import mix_targets as mix_targets
    from mixup_core.mixing import sample_mix_plan as sample_mix_plan
    from mixup_core.mixing import soft_cross_entropy as soft_cross_entropy
    from mixup_core.schedule import learning_rate as learning_rate
    from mixup_core.schedule import mixup_active as mixup_active
    from mixup_core.schemes import LABEL_SCHEMES as LABEL_SCHEMES
    from mixup_core.schemes import LabelScheme as LabelScheme
    from mixup_core.schemes import make_label_scheme as make_label_scheme
    from mixup_core.training import Pack as Pack
    from mixup_core.training import TrainingDiverged as TrainingDiverged
    from mixup_core.training import TrialResult as TrialResult
    from mixup_core.training import train as train

_EXPORTS = {
    "ConfigError": "config",
    "DataConfig": "config",
    "DataUnavailable": "errors",
    "LABEL_SCHEMES": "schemes",
    "LabelScheme": "schemes",
    "METRIC_NAMES": "catalog",
    "MixPlan": "mixing",
    "MixupConfig": "config",
    "ModelConfig": "config",
    "OptimConfig": "config",
    "Pack": "training",
    "TrainingDiverged": "training",
    "TrialConfig": "config",
    "TrialResult": "training",
    "flat_keys": "config",
    "flatten_nested": "config",
    "from_flat": "config",
    "learning_rate": "schedule",
    "make_label_scheme": "schemes",
    "mix_inputs": "mixing",
    "mix_targets": "mixing",
    "mixup_active": "schedule",
    "sample_mix_plan": "mixing",
    "soft_cross_entropy": "mixing",
    "to_flat": "config",
    "train": "training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
