"""Label schemes: how the label coefficient g is chosen given the input coefficient λ.

Inputs mix as ``λ x_i + (1-λ) x_j`` and labels as ``g y_i + (1-g) y_j``. The paper's first claim
is that Mixup still works when g differs from λ (decoupled interpolation); each scheme here is one
way to decouple them. A scheme has at most one numeric parameter, named and range-checked, so
schemes can be swept like any other hyperparameter. The trial config checks names and parameters
against :mod:`mixup_core.catalog`, which names the same schemes and ranges (tests/core/test_catalog.py).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor

from mixup_core.registry import Registry


class LabelScheme(ABC):
    """Maps input coefficients to label coefficients.

    Contract: ``label_weights`` returns a tensor shaped like ``lam`` with values in [0, 1]; any
    randomness it needs comes from ``resample``, which draws fresh coefficients from the same
    distribution as ``lam`` using the trial's mixing generator.
    """

    param_name: ClassVar[str | None] = None
    param_default: ClassVar[float | None] = None
    param_range: ClassVar[tuple[float, float]] = (-math.inf, math.inf)
    summary: ClassVar[str] = ""

    def __init__(self, param: float | None = None) -> None:
        if self.param_name is None:
            self.param = None
        else:
            self.param = self.param_default if param is None else float(param)

    @abstractmethod
    def label_weights(self, lam: Tensor, resample: Callable[[], Tensor]) -> Tensor:
        """Label coefficients g for input coefficients ``lam``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.param!r})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.param == getattr(other, "param", None)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.param))


LABEL_SCHEMES: Registry[type[LabelScheme]] = Registry("label scheme")


@LABEL_SCHEMES.register("same")
class Same(LabelScheme):
    summary = "g = λ: standard Mixup (Zhang et al., 2018)."

    def label_weights(self, lam: Tensor, resample: Callable[[], Tensor]) -> Tensor:
        return lam


@LABEL_SCHEMES.register("independent")
class Independent(LabelScheme):
    summary = "g drawn afresh from λ's distribution, independent of λ (the paper's decoupled Mixup)."

    def label_weights(self, lam: Tensor, resample: Callable[[], Tensor]) -> Tensor:
        return resample()


@LABEL_SCHEMES.register("power")
class Power(LabelScheme):
    summary = "g = λ^p / (λ^p + (1-λ)^p): p > 1 sharpens towards the dominant label, p < 1 flattens."
    param_name = "p"
    param_default = 2.0
    param_range = (0.0, 100.0)

    def label_weights(self, lam: Tensor, resample: Callable[[], Tensor]) -> Tensor:
        assert self.param is not None
        # Written as a sigmoid of a log-ratio so p up to 100 neither overflows nor divides 0 by 0.
        log_ratio = torch.log(lam.clamp_min(1e-30)) - torch.log((1 - lam).clamp_min(1e-30))
        return torch.sigmoid(self.param * log_ratio)


@LABEL_SCHEMES.register("dominant")
class Dominant(LabelScheme):
    summary = "g = 1 if λ > 1/2, 0 if λ < 1/2, 1/2 on a tie: the hard label of the larger-weight input."

    def label_weights(self, lam: Tensor, resample: Callable[[], Tensor]) -> Tensor:
        return (torch.sign(lam - 0.5) + 1) / 2


@LABEL_SCHEMES.register("constant")
class Constant(LabelScheme):
    summary = "g = c for every pair, whatever λ is (c = 1/2 by default: labels always averaged)."
    param_name = "c"
    param_default = 0.5
    param_range = (0.0, 1.0)

    def label_weights(self, lam: Tensor, resample: Callable[[], Tensor]) -> Tensor:
        assert self.param is not None
        return torch.full_like(lam, self.param)


@LABEL_SCHEMES.register("threshold")
class Threshold(LabelScheme):
    summary = "g = λ while max(λ, 1-λ) < t, else the dominant label (hard labels near the data)."
    param_name = "t"
    param_default = 0.75
    param_range = (0.5, 1.0)

    def label_weights(self, lam: Tensor, resample: Callable[[], Tensor]) -> Tensor:
        assert self.param is not None
        dominant = (torch.sign(lam - 0.5) + 1) / 2
        near_data = torch.maximum(lam, 1 - lam) >= self.param
        return torch.where(near_data, dominant, lam)


def make_label_scheme(name: str, param: float | None = None) -> LabelScheme:
    """Builds the registered scheme ``name`` with its numeric parameter (None: its default)."""
    return LABEL_SCHEMES.get(name)(param)
