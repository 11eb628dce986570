"""What the report calls things: the paper's names for metrics, config keys and their values.

Every axis label, legend title and table header of the report comes from here, so a figure
never shows a raw key such as ``test/acc_rare`` where the paper says "rare-feature test
accuracy". Unknown keys fall back to the key itself.
"""

from __future__ import annotations

import math
from typing import Any

RARE = "test/acc_rare"
COMMON = "test/acc_common"
ACC = "test/acc"
RARE_ALIGNMENT = "features/rare_alignment"
COMMON_ALIGNMENT = "features/common_alignment"
RARE_GLYPH_PROBE = "probe/rare_glyph"
MEMORISE_PROBE = "probe/memorise"
RIDGE_RARE_PROBE = "probe/ridge_rare"
RARE_ERR_NOISE = "test/rare_err_noise"
#: The probes of the mechanism that image data report (``mixup_core.catalog.VIEW_METRIC_NAMES``),
#: in the order of their panels.
PROBES = (RARE_GLYPH_PROBE, MEMORISE_PROBE, RIDGE_RARE_PROBE, RARE_ERR_NOISE)

ALPHA = "mixup.alpha"
SCHEME = "mixup.label_scheme"
STOP = "mixup.stop_epoch"
STOP_MODE = "mixup.stop_mode"
MIXUP_PREFIX = "mixup."

METRIC_NAMES = {
    RARE: "rare-feature test accuracy",
    COMMON: "common-feature test accuracy",
    ACC: "test accuracy",
    "test/loss": "test loss",
    "val/acc_rare": "rare-feature validation accuracy",
    "val/acc_common": "common-feature validation accuracy",
    "val/acc": "validation accuracy",
    "val/loss": "validation loss",
    "train/loss": "training loss",
    "train/acc": "training accuracy",
    RARE_ALIGNMENT: "rare-feature alignment",
    COMMON_ALIGNMENT: "common-feature alignment",
    "features/noise_memorization": "noise memorisation",
    "mixup/active": "Mixup active",
    RARE_GLYPH_PROBE: "rare-glyph probe (clean rare glyph on an empty canvas)",
    MEMORISE_PROBE: "memorisation probe (rare training images, glyph erased)",
    RIDGE_RARE_PROBE: "ridge transfer on rare points (penultimate features)",
    RARE_ERR_NOISE: "share of rare test errors on the feature-noise class",
    "val/rare_err_noise": "share of rare validation errors on the feature-noise class",
}

KEY_NAMES = {
    ALPHA: "α",
    SCHEME: "label scheme",
    STOP: "switch-off epoch",
    STOP_MODE: "stop mode",
    "mixup.label_param": "label-scheme parameter",
    "mixup.fold": "λ folded to [0.5, 1]",
    "data.rho": "ρ (rare-feature probability)",
    "data.dim": "d (patch dimension)",
    "data.n_train": "n (training points)",
    "data.num_classes": "K (classes)",
    "data.feature_noise": "feature-noise strength",
    "model.width": "m (filters per class)",
    "optim.lr": "learning rate",
    "optim.epochs": "epochs",
    "optim.batch_size": "batch size",
    "optim.weight_decay": "weight decay",
    "seed": "seed",
}

ERM = "ERM"
NEVER = "never (Mixup throughout)"


def metric_name(metric: str) -> str:
    """The paper's name of a metric key (``test/acc_rare`` -> "rare-feature test accuracy")."""
    return METRIC_NAMES.get(metric, metric)


def key_name(key: str) -> str:
    """The paper's name of a dotted config key (``mixup.alpha`` -> "α")."""
    return KEY_NAMES.get(key, key)


def format_value(key: str, value: Any) -> str:
    """A config value as the legends show it: switch-off epoch 0 is "ERM", None is "never"."""
    if key == STOP:
        if value is None:
            return NEVER
        if value == 0:
            return f"0 ({ERM})"
    if key == ALPHA and value == 0:
        return f"0 ({ERM})"
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_setting(key: str, value: Any) -> str:
    """``key = value`` in the paper's words, e.g. "α = 1" or "switch-off epoch 200"."""
    if key == SCHEME:
        return f"{value} labels"
    if key == STOP:
        if value is None:
            return "Mixup throughout"
        return ERM if value == 0 else f"switched off at {value}"
    return f"{key_name(key)} = {format_value(key, value)}"


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # None, pandas' NA
        return math.nan


def format_mean_std(mean: Any, std: Any) -> str:
    """``0.875 ± 0.012``; "n/a" for a missing mean, and no ± part for a missing std."""
    m, s = _number(mean), _number(std)
    if not math.isfinite(m):
        return "n/a"
    return f"{m:.3f}" if not math.isfinite(s) else f"{m:.3f} ± {s:.3f}"
