"""The closed-form engine: patch-CNN members of a pack, trained without autograd.

Members whose data config and seed agree share one data set, and members that also agree on
the filter shape (K·m rows, power q, GEMM precision) and the batch size form a group
(:class:`ClosedFormGroup`): the pre-activations of all its members are one (nP, B·K·m) matrix
and its step is a few tensor operations over all of them, with the patch CNN's gradient in
closed form. Where n·P <= d (the default task) a full-batch group trains in the *Gram form*,
W = s·W₀ + Cᵀ X, whose step is one (nP)² GEMM per member instead of two nP·d ones; elsewhere
in the *direct form*, one GEMM for the pre-activations, ``X Wᵀ``, and one for the weight
gradient, ``Rᵀ X``. Minibatch SGD trains in the direct form, each member on its own
minibatches (drawn from its batches stream as the reference trainer draws them) as one batched
GEMM over the member axis. Everything else that may differ between members is a per-member
tensor or Python value: α, label scheme and parameter, fold, switch-off epoch and stop mode
(the mixing plan of each member, λ = 1 and the identity partner when it does not mix), learning
rate and schedule, momentum, weight decay, epoch budget, log interval.

In float32 a member follows the unpacked patch CNN's arithmetic except for the order of
floating-point sums (inside the GEMMs, and in the Gram form the products of X summed before
those of W; tests/core/test_packed.py states the tolerance).

``precision: bfloat16`` runs the GEMMs on bfloat16 copies of their operands (filters and data;
C and G in the Gram form), with float32 accumulation inside the GEMM, float32 master weights
and everything else in float32; ``auto`` does so where the hardware has native bfloat16
(mixup_core.precision).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from mixup_core.config import TrialConfig
from mixup_core.data import TaskData
from mixup_core.mixing import MixPlan, sample_mix_plan, soft_targets
from mixup_core.precision import patch_cnn_gemm_dtype
from mixup_core.schedule import learning_rate, mixup_active
from mixup_core.seeding import Stream, make_generator
from mixup_core.training.member import Member, mix_plans
from mixup_core.training.metrics import Metrics, rows, split_columns


def gemm_dtype(config: TrialConfig, device: torch.device) -> torch.dtype:
    return patch_cnn_gemm_dtype(config.precision, device)


def use_gram(data: TaskData) -> bool:
    """Whether a group on ``data`` trains in the Gram form: when n·P <= d.

    The Gram form's step costs nP/(2d) of the direct form's FLOPs and its Gram matrix (nP)² at
    most as much memory as the training patches, so it wins wherever n·P <= d.
    """
    n, p, d = data.x_train.shape
    return n * p <= d


def member_bytes(config: TrialConfig) -> int:
    """An upper estimate of the memory (bytes) one member with ``config`` holds in a pack.

    Per member, in float32 values of K·m filters: its filters and momentum buffer and, at a
    logged epoch, the rebuilt filters (3·d); the step's pre-activations, coefficients and
    temporaries (11·nP); and evaluation's cached products with W₀ and the products it computes,
    over every split's patches, the features and the training noise (2 x the rows).
    """
    d = config.data
    km, rows = d.num_classes * config.model.width, d.n_train * d.num_patches
    eval_rows = (d.n_train + d.n_val + d.n_test) * d.num_patches + 2 * d.num_classes + rows
    return 4 * km * (3 * d.dim + 11 * rows + 2 * eval_rows)




class ClosedFormGroup:
    """Members that share a data set and a filter shape: their whole step as one computation.

    The pre-activations of all members are one (nP, B·K·m) matrix ``Z`` (row i·P + p is patch p
    of point i, column b·K·m + j is filter j of member b), so mixing, which permutes the points
    of each member, is a gather of contiguous rows. Two forms of the same arithmetic (``gram``):

    * *direct*: the float32 filters W (B·K·m, d) are the state; a step is the GEMM ``Z = X Wᵀ``
      and the GEMM ``∇W = Rᵀ X`` (2 x 2·K·m·nP·d FLOPs per member).
    * *Gram*: W is never formed. Every GD update adds a combination of the training patches to
      W, so ``W = s·W₀ + Cᵀ X`` with a per-member scale s (1 without weight decay) and
      coefficients C (nP, B·K·m). Then ``Z = s·X W₀ᵀ + G C`` with the Gram matrix
      ``G = X Xᵀ``, the gradient with respect to C is R itself, and a step is one GEMM of
      2·K·m·(nP)² FLOPs per member: nP/(2d) of the direct form (0.15 on the default task).
      ``X W₀ᵀ`` and ``G`` are computed once.

    Evaluation multiplies, for every evaluated member at once, the rows E of every split's
    patches, the features and the training noise with Wᵀ: in the Gram form as
    ``s·(E W₀ᵀ) + (E Xᵀ) C`` from products computed at the first logged epoch.
    """

    def __init__(self, data: TaskData, members: list[Member], weights: list[Tensor],
                 dtype: torch.dtype, device: torch.device, gram: bool) -> None:
        first = members[0].config
        self.data, self.members, self.dtype, self.device = data, members, dtype, device
        self.k, self.m, self.q = data.num_classes, first.model.width, first.model.power
        n, p, d = data.x_train.shape
        self.n, self.p, self.d, self.km = n, p, d, self.k * first.model.width
        size = first.optim.batch_size
        #: Minibatch size (None: full batch); minibatches train in the direct form.
        self.batch_size = None if size is None or size >= n else size
        if self.batch_size is not None:
            gram = False
            for member in members:
                member.generators.setdefault(
                    "batches", make_generator(member.config.seed, Stream.BATCHES))
        self.gram = gram
        self.x = data.x_train.reshape(n * p, d)
        b = len(members)
        base = torch.stack(weights).to(device).reshape(b * self.km, d)
        if gram:
            self.base = base  # W₀
            self.z0 = self.x @ base.T  # X W₀ᵀ, (nP, B·Km)
            self.gram_matrix = self.x @ self.x.T  # G = X Xᵀ, (nP, nP)
            self.gram_low = self.gram_matrix.to(dtype)
            self.scale = torch.ones(b, device=device)
            self.scale_buf = torch.zeros_like(self.scale)
            self.state = torch.zeros_like(self.z0)  # C
        else:
            self.x_low = self.x.to(dtype)
            self.state = base  # W itself
        self.buf = torch.zeros_like(self.state)  # momentum buffers
        self.has_buf = torch.zeros(b, dtype=torch.bool, device=device)
        self.targets = soft_targets(data.y_train, self.k)  # (n, K)
        #: Whether some member has weight decay; without it s stays exactly 1.
        self.decays = any(m.config.optim.weight_decay for m in members)

    # -- layout

    def _per_member(self, t: Tensor) -> Tensor:
        """A (B, 1, 1) or (1, B, 1) view of per-member values (B,) that broadcasts over state."""
        return t.view(1, -1, 1) if self.gram else t.view(-1, 1, 1)

    def _members_view(self, t: Tensor) -> Tensor:
        """State-shaped ``t`` as (nP, B, Km) (Gram) or (B, Km, d) (direct)."""
        return t.view(self.n * self.p, -1, self.km) if self.gram else t.view(-1, self.km, self.d)

    def _select(self, t: Tensor, index: Tensor | list[int]) -> Tensor:
        """The members ``index`` of ``t``: of its column blocks (rows, B·Km) in the Gram form
        (the state and every product with W₀), of its row blocks (B·Km, d) in the direct form."""
        if self.gram:
            return t.view(t.shape[0], -1, self.km)[:, index].reshape(t.shape[0], -1)
        return t.view(-1, self.km, self.d)[index].reshape(-1, self.d)

    # -- membership

    def keep(self, keep: Sequence[bool]) -> None:
        """Drops the members whose entry is False (finished, stopped or diverged)."""
        mask = torch.tensor(list(keep), dtype=torch.bool, device=self.device)
        self.members = [m for m, k in zip(self.members, keep, strict=True) if k]
        self.state, self.buf = self._select(self.state, mask), self._select(self.buf, mask)
        self.has_buf = self.has_buf[mask]
        if self.gram:
            self.z0 = self._select(self.z0, mask)
            self.base = self.base.view(-1, self.km, self.d)[mask].reshape(-1, self.d)
            self.scale, self.scale_buf = self.scale[mask], self.scale_buf[mask]
            for name in ("_logit_base", "_diag_base"):  # evaluation's products, once made
                if hasattr(self, name):
                    setattr(self, name, self._select(getattr(self, name), mask))
        self.decays = any(m.config.optim.weight_decay for m in self.members)

    # -- the step

    def _gemm(self, a: Tensor, b: Tensor) -> Tensor:
        """``a @ b`` in the group's precision (float32 accumulation), as float32."""
        if self.dtype == torch.float32:
            return a @ b
        return (a.to(self.dtype) @ b.to(self.dtype)).float()

    def _train_preactivations(self) -> Tensor:
        """Z (nP, B·Km) on the training patches, in either form."""
        if not self.gram:
            return self._gemm(self.x_low, self.state.T)
        if self.dtype == torch.float32 and not self.decays:
            return torch.addmm(self.z0, self.gram_matrix, self.state)
        z = self._gemm(self.gram_low, self.state)
        if not self.decays:
            return z.add_(self.z0)
        return z.view_as(self._members_view(z)).addcmul_(
            self._members_view(self.z0), self._per_member(self.scale)).view_as(z)

    def step(self) -> Tensor:
        """One epoch of every member; returns each member's mean objective (B,)."""
        if self.batch_size is not None:
            return self._minibatch_epoch()
        members, n, p, km = self.members, self.n, self.p, self.km
        b = len(members)
        mixing = [mixup_active(m.config, m.epoch) for m in members]
        any_mixing = any(mixing)
        if any_mixing:
            ones, identity = torch.ones(n), torch.arange(n)
            lams, partners, gs = [], [], []
            # A member's mixing stream is seeded by its seed alone and drawn from only here,
            # once per epoch while it mixes (a prefix of its epochs), so members that agree on
            # the seed, epoch, α, fold and label scheme draw the same plan: it is drawn once
            # and the others' generators are set to the state the draw left.
            drawn: dict[tuple[Any, ...], tuple[MixPlan, Tensor]] = {}
            for member, mixes in zip(members, mixing, strict=True):
                if mixes:
                    mix, generator = member.config.mixup, member.generators["mix"]
                    key = (member.config.seed, member.epoch, mix.alpha, mix.fold,
                           repr(member.scheme))
                    if key in drawn:
                        plan, after = drawn[key]
                        generator.set_state(after)
                    else:
                        plan = sample_mix_plan(n, alpha=mix.alpha, scheme=member.scheme,
                                               fold=mix.fold, generator=generator)
                        drawn[key] = plan, generator.get_state()
                    lams.append(plan.lam)
                    partners.append(plan.partner)
                    gs.append(plan.label_weight)
                else:  # λ = 1 with the identity partner: z̃ = z exactly
                    lams.append(ones)
                    partners.append(identity)
                    gs.append(ones)
            lam = torch.stack(lams).to(self.device)  # (B, n)
            partner = torch.stack(partners).to(self.device)
            g = torch.stack(gs).to(self.device)
            # Z's row-blocks of Km values are indexed (i, p, b); point i of member b takes
            # point π_b(i): a gather of those blocks. π is a permutation, so sending
            # (1-λ_i)·∇_i back to π(i) is the gather by π⁻¹.
            offsets = (torch.arange(p, device=self.device).view(1, p, 1) * b
                       + torch.arange(b, device=self.device).view(1, 1, b))

            def blocks(perm: Tensor) -> Tensor:
                return (perm.T.reshape(n, 1, b) * (p * b) + offsets).reshape(-1)

            forward, backward = blocks(partner), blocks(torch.argsort(partner, dim=1))
            lam_z = lam.T.reshape(n, 1, b, 1)

        z = self._train_preactivations().view(n, p, b, km)
        if any_mixing:
            mixed = z.view(-1, km).index_select(0, forward).view_as(z)
            z = torch.lerp(mixed, z, lam_z)
        act, slope = self._activation(z)
        logits = act.view(n, p, b, self.k, self.m).sum(dim=-1).sum(dim=1).transpose(0, 1)
        targets = self.targets.expand(b, n, self.k)  # logits and targets: (B, n, K)
        if any_mixing:
            targets = torch.lerp(targets.gather(1, partner.view(b, n, 1).expand(b, n, self.k)),
                                 targets, g.view(b, n, 1))
        log_probs = torch.log_softmax(logits, dim=-1)
        loss = -(targets * log_probs).sum(-1).mean(-1)  # (B,)
        grad_logits = (log_probs.exp() - targets).mul_(self.q / n)  # (B, n, K), times q
        per_filter = grad_logits.transpose(0, 1).contiguous().view(n, 1, b, self.k, 1)
        grad_z = slope.view(n, p, b, self.k, self.m).mul_(per_filter).view(n, p, b, km)
        if any_mixing:
            back = (grad_z * (1 - lam_z)).view(-1, km).index_select(0, backward)
            grad_z = grad_z.mul_(lam_z).add_(back.view_as(grad_z))
        rows = grad_z.view(n * p, b * km)
        # Gram form: ∂L/∂C = R exactly (W = s·W₀ + Cᵀ X); direct form: ∂L/∂W = Rᵀ X
        grad = rows if self.gram else self._gemm(rows.T, self.x_low)
        self._sgd(grad)
        for member in members:
            member.epoch += 1
        self.last_mixing = mixing
        return loss

    def _activation(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """σ(z) = max(0, z)^q and σ'(z)/q (for q = 1 the step 1[z > 0], not 0^0 = 1)."""
        relu = torch.relu(z)
        if self.q == 1:
            return relu, (z > 0).to(z.dtype)
        slope = relu if self.q == 2 else relu.pow(self.q - 1)
        return slope * relu, slope

    def _minibatch_epoch(self) -> Tensor:
        """One epoch of minibatch SGD of every member, each on its own minibatches; returns
        each member's mean objective over the epoch's batches (B,).

        Member b's batch is X[order_b] (s, P, d); the step is the batched GEMM of every
        member's batch with its filters (B, s·P, d) x (B, d, Km), the closed-form gradient of
        the patch CNN, and the batched GEMM of the pre-activation gradients with the batch."""
        members, p, k, m, km = self.members, self.p, self.k, self.m, self.km
        b, n, size = len(members), self.n, self.batch_size
        assert size is not None
        mixing = [mixup_active(mb.config, mb.epoch) for mb in members]
        orders = torch.stack([torch.randperm(n, generator=mb.generators["batches"])
                              for mb in members]).to(self.device)
        patches = self.x_low.view(n, p, self.d)
        total = torch.zeros(b, device=self.device)
        batches = orders.split(size, dim=1)
        for index in batches:  # (B, s)
            s = index.shape[1]
            x = patches[index].view(b, s * p, self.d)
            weight = self._members_view(self.state)  # (B, Km, d), float32
            z = self._bmm(x, weight.transpose(1, 2)).view(b, s, p, km)
            targets = self.targets[index]  # (B, s, K)
            if any(mixing):
                lam, partner, g = mix_plans(members, mixing, s, self.device)
                lam_z = lam.view(b, s, 1, 1)
                z = torch.lerp(z.gather(1, partner.view(b, s, 1, 1).expand_as(z)), z, lam_z)
                targets = torch.lerp(targets.gather(1, partner.view(b, s, 1).expand_as(targets)),
                                     targets, g.view(b, s, 1))
            act, slope = self._activation(z)
            logits = act.view(b, s, p, k, m).sum(dim=-1).sum(dim=2)  # (B, s, K)
            log_probs = torch.log_softmax(logits, dim=-1)
            total += -(targets * log_probs).sum(-1).mean(-1)
            grad_logits = (log_probs.exp() - targets).mul_(self.q / s)  # (B, s, K), times q
            grad_z = slope.view(b, s, p, k, m).mul_(grad_logits.view(b, s, 1, k, 1))
            grad_z = grad_z.view(b, s, p, km)
            if any(mixing):
                # z̃_i = λ_i z_i + (1-λ_i) z_π(i): (1-λ_i)·grad_i goes back to point π(i)
                back = grad_z * (1 - lam_z)
                grad_z = grad_z.mul_(lam_z).scatter_add_(
                    1, partner.view(b, s, 1, 1).expand_as(back), back)
            grad = self._bmm(grad_z.view(b, s * p, km).transpose(1, 2), x)  # (B, Km, d)
            self._sgd(grad.reshape(b * km, self.d))
        for member in members:
            member.epoch += 1
        self.last_mixing = mixing
        return total / len(batches)

    def _bmm(self, a: Tensor, b: Tensor) -> Tensor:
        """Batched ``a @ b`` in the group's precision (float32 accumulation), as float32."""
        if self.dtype == torch.float32:
            return torch.bmm(a, b)
        return torch.bmm(a.to(self.dtype), b.to(self.dtype)).float()

    def _sgd(self, grad: Tensor) -> None:
        """torch.optim.SGD's update (dampening 0, no Nesterov) with per-member settings.

        In the Gram form the update of W = s·W₀ + Cᵀ X is the same update of (s, C): weight
        decay adds wd·s to s's gradient and wd·C to C's, and momentum keeps a buffer of each.
        """
        members = self.members
        lr = torch.tensor([learning_rate(m.config, m.epoch) for m in members], device=self.device)
        momentum = [m.config.optim.momentum for m in members]
        state, each = self._members_view(self.state), self._per_member
        grad = self._members_view(grad)
        grad_scale = None
        if self.decays:
            wd = torch.tensor([m.config.optim.weight_decay for m in members], device=self.device)
            grad = grad + each(wd) * state
            if self.gram:
                grad_scale = wd * self.scale
        if any(momentum):
            mom = torch.tensor(momentum, device=self.device)
            first, uses = ~self.has_buf, mom != 0
            buf = torch.where(each(first), grad, self._members_view(self.buf) * each(mom) + grad)
            self.buf = buf.view_as(self.state)
            self.has_buf |= uses
            grad = torch.where(each(uses), buf, grad)
            if grad_scale is not None:
                self.scale_buf = torch.where(first, grad_scale, self.scale_buf * mom + grad_scale)
                grad_scale = torch.where(uses, self.scale_buf, grad_scale)
        state.sub_(each(lr) * grad)
        if grad_scale is not None:
            self.scale.sub_(lr * grad_scale)

    # -- evaluation

    def _eval_operands(self) -> None:
        """Builds, once, what evaluation multiplies: the rows of every split's patches (logits)
        and of the features and training noise (diagnostics), and in the Gram form their
        products with X and with W₀, so that E Wᵀ = s·(E W₀ᵀ) + (E Xᵀ) C needs no W."""
        if hasattr(self, "_logit_rows"):
            return
        d = self.data
        splits = (d.x_train, d.x_val, d.x_test)
        self._split_sizes = [x.shape[0] for x in splits]
        logit_rows = torch.cat([x.reshape(-1, self.d) for x in splits])
        diag = None
        if d.common_features is not None and d.rare_features is not None:
            parts = [d.common_features, d.rare_features]
            if d.train_noise is not None:
                parts.append(d.train_noise.reshape(-1, self.d))
            diag = torch.cat(parts)
        self._diag_rows = diag
        if self.gram:
            self._logit_rows = self._gemm(logit_rows, self.x.T).to(self.dtype)  # E Xᵀ
            self._logit_base = self._gemm(logit_rows, self.base.T)  # E W₀ᵀ, (rows, B·Km)
            if diag is not None:
                self._diag_cross, self._diag_base = diag @ self.x.T, diag @ self.base.T
        else:
            self._logit_rows = logit_rows.to(self.dtype)

    def _products(self, which: list[int]) -> tuple[Tensor, Tensor | None]:
        """E Wᵀ for the logit rows (in the group's precision) and the diagnostic rows (float32),
        each (rows, B'·Km), for the members at positions ``which``."""
        km, b = self.km, len(which)
        diag = None
        if self.gram:
            coef = self._members_view(self.state)[:, which].reshape(-1, b * km)
            scale = self.scale[which].view(1, b, 1)

            def plus_base(product: Tensor, base: Tensor) -> Tensor:
                base = base.view(base.shape[0], -1, km)[:, which]
                if self.decays:
                    base = base * scale
                return product.view(-1, b, km).add_(base).view(-1, b * km)

            logits = plus_base(self._gemm(self._logit_rows, coef), self._logit_base)
            if self._diag_rows is not None:
                diag = plus_base(self._diag_cross @ coef, self._diag_base)
        else:
            weight = self._members_view(self.state)[which].reshape(b * km, self.d)
            logits = self._gemm(self._logit_rows, weight.T)
            if self._diag_rows is not None:
                diag = self._diag_rows @ weight.T
        return logits, diag

    @torch.no_grad()
    def evaluate(self, which: Sequence[int]) -> list[Metrics]:
        """The unpacked trainer's ``evaluate`` metrics for the members at positions ``which``,
        computed for all of them at once."""
        self._eval_operands()
        d, which = self.data, list(which)
        b, k, m, p = len(which), self.k, self.m, self.p
        products, diag = self._products(which)
        columns: dict[str, Tensor] = {}
        start = 0
        for split, size in zip(("train", "val", "test"), self._split_sizes, strict=True):
            z = products[start * p:(start + size) * p].view(size, p, b, k, m)
            start += size
            logits = torch.relu(z).pow(self.q).sum(dim=-1).sum(dim=1)  # (N, B', K)
            y = {"train": d.y_train, "val": d.y_val, "test": d.y_test}[split]
            rare = {"train": d.rare_train, "val": d.rare_val, "test": d.rare_test}[split]
            columns |= split_columns(split, logits.transpose(0, 1), y, rare)
        if diag is not None:
            for name, offset in (("common", 0), ("rare", k)):
                inner = diag[offset:offset + k].view(k, b, k, m)  # <v_k, w_{k', r}>
                own = torch.diagonal(inner, dim1=0, dim2=2)  # (B', m, K): k' = k
                columns[f"features/{name}_alignment"] = own.amax(dim=1).mean(dim=-1)
            if d.train_noise is not None:
                noise, n = d.train_noise, d.train_noise.shape[0]
                inner = diag[2 * k:].view(n, p, b, k, m)
                labels = d.y_train.view(n, 1, 1, 1, 1).expand(n, p, b, 1, m)
                own = inner.gather(3, labels).squeeze(3)  # (n, P, B', m): w_{y_i, r}
                noisy = noise.abs().sum(dim=-1) > 0  # (n, P): patches that carry noise at all
                own = own.masked_fill(~noisy.view(n, p, 1, 1), float("-inf"))
                best = own.amax(dim=3).amax(dim=1)  # (n, B')
                finite = torch.isfinite(best)
                count = finite.sum(dim=0)
                total = torch.where(finite, best, torch.zeros_like(best)).sum(dim=0)
                columns["features/noise_memorization"] = torch.where(
                    count > 0, total / count.clamp_min(1), torch.zeros_like(total))
        return rows(columns)

    def weight(self, which: Sequence[int] | None = None) -> Tensor:
        """The float32 filters W (B', K·m, d) of the members at positions ``which`` (all: None)."""
        index = list(range(len(self.members))) if which is None else list(which)
        if not self.gram:
            return self._members_view(self.state)[index]
        coef = self._members_view(self.state)[:, index]  # (nP, B', Km)
        base = self.base.view(-1, self.km, self.d)[index]
        combo = torch.einsum("ibj,id->bjd", coef, self.x)
        if not self.decays:
            return combo.add_(base)
        return torch.addcmul(combo, base, self.scale[index].view(-1, 1, 1))

    # -- checkpoints

    def _member(self, t: Tensor, j: int) -> Tensor:
        v = self._members_view(t)
        return v[:, j] if self.gram else v[j]

    def member_state(self, j: int) -> dict[str, Any]:
        state: dict[str, Any] = {
            "form": "gram" if self.gram else "direct",
            "state": self._member(self.state, j).cpu().clone(),
            "has_buf": bool(self.has_buf[j]),  # the momentum buffer only once there is one
            "buf": self._member(self.buf, j).cpu().clone() if self.has_buf[j] else None}
        if self.gram:
            state |= {"scale": float(self.scale[j]), "scale_buf": float(self.scale_buf[j])}
        return state

    def load_member_state(self, j: int, state: dict[str, Any]) -> None:
        form = "gram" if self.gram else "direct"
        if state.get("form") != form:
            raise ValueError(f"checkpoint holds the {state.get('form')} form of a member that "
                             f"this version trains in the {form} form")
        self._member(self.state, j).copy_(state["state"])
        if state["buf"] is not None:
            self._member(self.buf, j).copy_(state["buf"])
        self.has_buf[j] = bool(state["has_buf"])
        if self.gram:
            self.scale[j], self.scale_buf[j] = float(state["scale"]), float(state["scale_buf"])


