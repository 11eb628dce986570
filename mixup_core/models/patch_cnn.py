"""The paper's two-layer convolutional network over patches.

F_k(x) = Σ_{r=1..m} Σ_p σ(<w_{k,r}, x_p>) with σ(z) = max(0, z)^q; the logits are (F_1..F_K).
The second layer is fixed (all ones), as in the paper's analysis; only W is trained.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mixup_core.mixing import MixPlan


class PatchCNN(nn.Module):
    """Two-layer patch CNN that mixes after its linear first layer.

    Because the first layer is linear, W(λ x_i + (1-λ) x_j) = λ W x_i + (1-λ) W x_j: mixing the
    (n, P, K·m) pre-activations gives exactly the network's output on mixed inputs, without
    materialising the (n, P, d) mixed batch, so a Mixup step costs what an ERM step costs.
    ``loss_and_grad`` computes the soft-target cross-entropy and its gradient in closed form,
    which halves the per-step overhead of autograd on this tiny graph (tested against autograd).
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
        #: The precision of both GEMMs (``precision: bfloat16``); the weights stay float32.
        self.gemm_dtype = torch.float32

    def _gemm(self, a: Tensor, b: Tensor) -> Tensor:
        if self.gemm_dtype == torch.float32:
            return a @ b
        return (a.to(self.gemm_dtype) @ b.to(self.gemm_dtype)).float()

    def _preactivations(self, x: Tensor) -> Tensor:
        n, p, d = x.shape
        # W Xᵀ rather than X Wᵀ: for these skinny shapes MKL runs ~30% faster this way round
        # (benchmarks/gd_step.py); the transposed view costs nothing.
        return self._gemm(self.weight, x.reshape(n * p, d).T).T.view(n, p, -1)

    @staticmethod
    def _mix(z: Tensor, mix: MixPlan) -> Tensor:
        lam = mix.lam.to(z.dtype).view(-1, 1, 1)
        return torch.lerp(z.index_select(0, mix.partner), z, lam)

    def _logits(self, z: Tensor) -> Tensor:
        act = torch.relu(z).pow(self.power)
        return act.sum(dim=1).view(z.shape[0], self.num_classes, self.width).sum(dim=-1)

    def forward(self, x: Tensor, mix: MixPlan | None = None) -> Tensor:
        """Logits (n, K) for patches ``x`` (n, P, d), of the mixed inputs when ``mix`` is given."""
        z = self._preactivations(x)
        return self._logits(z if mix is None else self._mix(z, mix))

    @torch.no_grad()
    def loss_and_grad(self, x: Tensor, targets: Tensor, mix: MixPlan | None = None) -> Tensor:
        """Mean soft cross-entropy against ``targets`` (n, K); writes its gradient to weight.grad."""
        n, p, d = x.shape
        z = self._preactivations(x)
        z_used = z if mix is None else self._mix(z, mix)
        relu = torch.relu(z_used)
        logits = self._logits(z_used)
        log_probs = torch.log_softmax(logits, dim=-1)
        loss = -(targets * log_probs).sum(-1).mean()
        # dL/dlogits = (softmax - t)/n; each filter of class k gets its class's logit gradient.
        grad_logits = (log_probs.exp() - targets) / n  # (n, K)
        per_filter = grad_logits.repeat_interleave(self.width, dim=1).view(n, 1, -1)
        # σ'(z) = q·max(0, z)^(q-1); for q = 1 that is the step 1[z > 0], not 0^0 = 1.
        slope = (z_used > 0).to(z.dtype) if self.power == 1 else relu.pow(self.power - 1)
        grad_z = slope.mul_(self.power).mul_(per_filter)  # (n, P, K·m)
        if mix is not None:
            lam = mix.lam.to(z.dtype).view(-1, 1, 1)
            # z̃_i = λ_i z_i + (1-λ_i) z_π(i): send (1-λ_i)·grad_i back to example π(i).
            unmixed = grad_z * lam
            grad_z = unmixed.index_add_(0, mix.partner, grad_z * (1 - lam))
        grad_w = self._gemm(grad_z.reshape(n * p, -1).T, x.reshape(n * p, d))
        if self.weight.grad is None:
            self.weight.grad = grad_w
        else:
            self.weight.grad.copy_(grad_w)
        return loss

    def filters(self) -> Tensor:
        """W as (K, m, d): ``filters()[k, r]`` is w_{k,r}."""
        return self.weight.view(self.num_classes, self.width, -1)
