"""The paper's two-layer convolutional network over patches.

F_k(x) = Σ_{r=1..m} Σ_p σ(<w_{k,r}, x_p>) with σ(z) = max(0, z)^q; the logits are (F_1..F_K).
The second layer is fixed (all ones), as in the paper's analysis; only W is trained.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mixup_core.mixing import MixPlan


class PatchCNN(nn.Module):
    """Two-layer patch CNN; ``mixes_linearly`` lets the trainer mix after the first layer.

    Because the first layer is linear, W(λ x_i + (1-λ) x_j) = λ W x_i + (1-λ) W x_j: mixing the
    (n·P, K·m) pre-activations gives exactly the network's output on mixed inputs, without
    materialising the (n, P, d) mixed batch. That keeps a Mixup step as cheap as an ERM step.
    """

    mixes_linearly = True

    def __init__(
        self, *, num_classes: int, dim: int, width: int, power: int, init_std: float,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.num_classes, self.width, self.power = num_classes, width, power
        init = torch.randn(num_classes * width, dim, generator=generator) * init_std
        self.weight = nn.Parameter(init)  # row k*m + r is filter w_{k,r}

    def forward(self, x: Tensor, mix: MixPlan | None = None) -> Tensor:
        """Logits (n, K) for patches ``x`` (n, P, d), of the mixed inputs when ``mix`` is given."""
        n, p, d = x.shape
        z = (x.reshape(n * p, d) @ self.weight.T).view(n, p, -1)
        if mix is not None:
            lam = mix.lam.to(z.dtype).view(n, 1, 1)
            z = torch.lerp(z[mix.partner], z, lam)
        act = torch.relu(z).pow(self.power)
        return act.sum(dim=1).view(n, self.num_classes, self.width).sum(dim=-1)

    def filters(self) -> Tensor:
        """W as (K, m, d): ``filters()[k, r]`` is w_{k,r}."""
        return self.weight.view(self.num_classes, self.width, -1)
