"""The paper's feature-noise data model with common and rare features (see docs/science.md).

Each example has P patches in R^d. Patch 0 holds the class feature: the common feature c_y with
probability 1-ρ, the rare feature r_y with probability ρ. Patch 1 holds feature noise α_fn·c_y'
for a random other class y'. The other patches are Gaussian noise N(0, σ_p² I) projected off the
span of the 2K features (as in Zou et al.), so noise never carries feature signal by chance: its
covariance is σ_p² (I - UUᵀ) for the orthonormal feature basis U, not σ_p² I.

The train and test sets come from the DATA generator (features first, then train, then test);
the validation set (``data.n_val`` points, rare share as the test set's) is drawn from the VAL
generator with the same features, so changing ``n_val`` never changes train or test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mixup_core.data.base import TaskData

if TYPE_CHECKING:
    from mixup_core.config import DataConfig


def orthonormal_features(num_classes: int, dim: int, generator: torch.Generator) -> Tensor:
    """2K orthonormal rows: rows 0..K-1 become common features, rows K..2K-1 rare ones."""
    q, _ = torch.linalg.qr(torch.randn(dim, 2 * num_classes, generator=generator))
    return q.T.contiguous()


def _split(
    n: int,
    rare_fraction: float,
    basis: Tensor,
    config: DataConfig,
    generator: torch.Generator,
    *,
    exact_fraction: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    k, p, d = config.num_classes, config.num_patches, config.dim
    y = torch.randint(0, k, (n,), generator=generator)
    if exact_fraction:
        # Test sets use an exact rare count so test/acc_rare always has the planned support.
        rare = torch.zeros(n, dtype=torch.bool)
        rare[torch.randperm(n, generator=generator)[: round(rare_fraction * n)]] = True
    else:
        rare = torch.rand(n, generator=generator) < rare_fraction
    # A different class for the feature-noise patch: y + offset, offset uniform in 1..K-1.
    other = (y + torch.randint(1, k, (n,), generator=generator)) % k

    noise = torch.randn(n, p, d, generator=generator) * config.sigma_p
    noise -= (noise @ basis.T) @ basis  # project off span(features)
    if not config.noise_on_feature_patches:
        noise[:, :2] = 0.0
    features = config.feature_norm * basis
    x = noise.clone()
    x[:, 0] += torch.where(rare[:, None], features[k + y], features[y])
    x[:, 1] += config.feature_noise * features[other]
    return x, y, rare, noise


def make_feature_noise(config: DataConfig, generator: torch.Generator,
                       val_generator: torch.Generator) -> TaskData:
    """Draws train and test sets from ``generator`` and the validation set from
    ``val_generator``."""
    basis = orthonormal_features(config.num_classes, config.dim, generator)
    x_tr, y_tr, rare_tr, noise_tr = _split(
        config.n_train, config.rho, basis, config, generator, exact_fraction=False
    )
    test_fraction = config.rho if config.test_rare_fraction is None else config.test_rare_fraction
    x_te, y_te, rare_te, _ = _split(
        config.n_test, test_fraction, basis, config, generator, exact_fraction=True
    )
    x_va, y_va, rare_va, _ = _split(
        config.n_val, test_fraction, basis, config, val_generator, exact_fraction=True
    )
    k = config.num_classes
    return TaskData(
        x_train=x_tr, y_train=y_tr, rare_train=rare_tr,
        x_test=x_te, y_test=y_te, rare_test=rare_te,
        x_val=x_va, y_val=y_va, rare_val=rare_va,
        num_classes=k,
        common_features=config.feature_norm * basis[:k],
        rare_features=config.feature_norm * basis[k:],
        train_noise=noise_tr,
    )
