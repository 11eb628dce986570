"""Feature-learning diagnostics of the paper: how much of each feature the filters have learned."""

from __future__ import annotations

import torch
from torch import Tensor


def feature_alignment(filters: Tensor, features: Tensor) -> float:
    """Mean over classes k of max_r <w_{k,r}, v_k> for filters (K, m, d) and features (K, d)."""
    inner = torch.einsum("kmd,kd->km", filters, features)
    return float(inner.max(dim=1).values.mean())


def noise_memorization(filters: Tensor, noise: Tensor, labels: Tensor) -> float:
    """Mean over training points i of max_{r,p} <w_{y_i,r}, ξ_{i,p}> over the noisy patches."""
    n, p, d = noise.shape
    k, m, _ = filters.shape
    inner = (noise.reshape(n * p, d) @ filters.reshape(k * m, d).T).view(n, p, k, m)
    own = inner[torch.arange(n, device=noise.device), :, labels]  # (n, P, m)
    noisy = noise.abs().sum(dim=-1) > 0  # (n, P): patches that carry noise at all
    own = own.masked_fill(~noisy[:, :, None], float("-inf"))
    best = own.amax(dim=(1, 2))
    return float(best[torch.isfinite(best)].mean()) if torch.isfinite(best).any() else 0.0


def accuracy(logits: Tensor, labels: Tensor, mask: Tensor | None = None) -> float:
    """Accuracy over the points selected by ``mask`` (all when None); NaN when it selects none."""
    correct = logits.argmax(dim=-1) == labels
    if mask is not None:
        correct = correct[mask]
    return float(correct.float().mean()) if correct.numel() else float("nan")
