"""mixup_core: the paper's feature-noise task, decoupled λ schemes and early-stopped Mixup,
on the synthetic task and on real images (digits, MNIST-5k, CIFAR-10/100).

Pure PyTorch: this package never imports ray, mlflow, optuna or pyarrow.
"""

from mixup_core.config import (
    ConfigError,
    DataConfig,
    MixupConfig,
    ModelConfig,
    OptimConfig,
    TrialConfig,
    flat_keys,
    flatten_nested,
    from_flat,
    to_flat,
)
from mixup_core.errors import DataUnavailable
from mixup_core.mixing import MixPlan, mix_inputs, mix_targets, sample_mix_plan, soft_cross_entropy
from mixup_core.schedule import learning_rate, mixup_active
from mixup_core.schemes import LABEL_SCHEMES, LabelScheme, make_label_scheme
from mixup_core.training import (
    METRIC_NAMES,
    Trainer,
    TrainingDiverged,
    TrialResult,
    train,
)

__all__ = [
    "LABEL_SCHEMES", "METRIC_NAMES", "ConfigError", "DataConfig", "DataUnavailable", "LabelScheme",
    "MixPlan", "MixupConfig", "ModelConfig", "OptimConfig", "Trainer", "TrainingDiverged",
    "TrialConfig", "TrialResult", "flat_keys", "flatten_nested", "from_flat", "learning_rate",
    "make_label_scheme", "mix_inputs", "mix_targets", "mixup_active", "sample_mix_plan",
    "soft_cross_entropy", "to_flat", "train",
]
