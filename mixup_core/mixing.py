"""Choosing and applying Mixup, as pure functions with explicit randomness.

*Choosing* a mix (:func:`sample_mix_plan`) draws λ, the partner permutation and the label
coefficients from a ``torch.Generator``. *Applying* it (:func:`mix_inputs`, :func:`mix_targets`)
is deterministic. Targets become soft distributions, so the loss (:func:`soft_cross_entropy`)
knows nothing about Mixup.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mixup_core.schemes import LabelScheme
from mixup_core.seeding import numpy_rng_from


@dataclass(frozen=True)
class MixPlan:
    """One Mixup draw for a batch: example i is mixed with example ``partner[i]``.

    Attributes:
        lam: input coefficients λ, shape (n,): x̃_i = λ_i x_i + (1-λ_i) x_partner[i].
        partner: partner indices, shape (n,), a permutation of the batch.
        label_weight: label coefficients g, shape (n,): ỹ_i = g_i y_i + (1-g_i) y_partner[i].
    """

    lam: Tensor
    partner: Tensor
    label_weight: Tensor

    def to(self, device: torch.device | str) -> MixPlan:
        return MixPlan(self.lam.to(device), self.partner.to(device), self.label_weight.to(device))


def sample_lambda(n: int, *, alpha: float, fold: bool, generator: torch.Generator) -> Tensor:
    """λ ~ Beta(α, α) per example (float32, CPU), folded to [0.5, 1] when ``fold``."""
    lam = torch.from_numpy(numpy_rng_from(generator).beta(alpha, alpha, size=n)).float()
    return torch.maximum(lam, 1 - lam) if fold else lam


def sample_mix_plan(
    n: int, *, alpha: float, scheme: LabelScheme, fold: bool, generator: torch.Generator
) -> MixPlan:
    """Draws λ, an in-batch permutation and label coefficients for a batch of ``n`` examples."""
    if alpha <= 0:
        raise ValueError(f"mixup.alpha must be > 0 to sample a mix, got {alpha}")
    lam = sample_lambda(n, alpha=alpha, fold=fold, generator=generator)
    partner = torch.randperm(n, generator=generator)

    def resample() -> Tensor:
        return sample_lambda(n, alpha=alpha, fold=fold, generator=generator)

    label_weight = scheme.label_weights(lam, resample).to(torch.float32)
    return MixPlan(lam=lam, partner=partner, label_weight=label_weight)


def _per_example(weights: Tensor, like: Tensor) -> Tensor:
    return weights.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


def mix_inputs(x: Tensor, plan: MixPlan) -> Tensor:
    """λ x_i + (1-λ) x_partner[i] along the batch dimension."""
    return torch.lerp(x.index_select(0, plan.partner), x, _per_example(plan.lam, x))


def soft_targets(y: Tensor, num_classes: int) -> Tensor:
    return F.one_hot(y, num_classes).float()


def mix_targets(targets: Tensor, plan: MixPlan) -> Tensor:
    """g t_i + (1-g) t_partner[i] for (n, K) soft targets, e.g. ``soft_targets(y, K)``."""
    g = plan.label_weight.to(targets.dtype).view(-1, 1)
    return torch.lerp(targets.index_select(0, plan.partner), targets, g)


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean over the batch of -Σ_k target_k log softmax(logits)_k."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()
