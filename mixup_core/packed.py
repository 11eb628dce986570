"""Packed training: many patch-CNN trials (one config with one seed each) as one computation.

A :class:`Pack` holds B *members*. Members whose data config and seed agree share one data set,
and members that also agree on the filter shape (K·m rows, power q, GEMM precision) form a
*group*: their filters are stacked into one (B·K·m, d) matrix, so a full-batch GD step of the
whole group is one GEMM for the pre-activations, ``W Xᵀ``, and one for the weight gradient,
``∇Z X``. Everything else that may differ between members is a per-member tensor or Python value:
α, label scheme and parameter, fold, switch-off epoch and stop mode (the mixing plan of each
member, λ = 1 and the identity partner when it does not mix), learning rate and schedule,
momentum, weight decay, epoch budget, log interval.

Each member draws from the same seeded streams as :class:`~mixup_core.training.Trainer` (data,
initial filters, mixing), in the same order, so in float32 a member follows the unpacked
trainer's arithmetic except for the summation order inside the GEMMs (tests/test_packed.py
states the tolerance). A member that reaches its budget, is stopped (:meth:`Pack.stop`) or
diverges leaves its group; the others go on untouched (GEMM rows are independent).

``precision: bfloat16`` runs both GEMMs on bfloat16 copies of the filters and data, with
float32 accumulation inside the GEMM, float32 master weights and everything else in float32;
``auto`` does so where the hardware has native bfloat16 (mixup_core.precision).

Only full-batch GD of the patch CNN packs (minibatches would give each member its own batches,
so there would be no shared GEMM); :func:`check_packable` says why a config cannot.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from mixup_core.config import TrialConfig, to_flat
from mixup_core.data import TaskData, build_data
from mixup_core.diagnostics import accuracy, feature_alignment, noise_memorization
from mixup_core.errors import ConfigError
from mixup_core.mixing import sample_mix_plan, soft_targets
from mixup_core.models import build_model
from mixup_core.models.patch_cnn import PatchCNN
from mixup_core.precision import patch_cnn_gemm_dtype
from mixup_core.schedule import learning_rate, mixup_active
from mixup_core.schemes import LabelScheme, make_label_scheme
from mixup_core.seeding import Stream, make_generator
from mixup_core.training import Metrics, TrialResult, resolve_device

Status = Literal["running", "done", "stopped", "diverged"]


def check_packable(config: TrialConfig) -> None:
    """Raises ConfigError (naming the key) unless ``config`` can be a member of a pack."""
    if config.model.name != "patch_cnn" or config.data.is_image:
        raise ConfigError(f"execution.pack: only the patch CNN on the feature-noise task packs; "
                          f"model.name {config.model.name!r} with data.name "
                          f"{config.data.name!r} runs one trial per Ray trial (pack: 1)")
    if config.optim.batch_size is not None and config.optim.batch_size < config.data.n_train:
        raise ConfigError(f"optim.batch_size: packed members train full batch (null or >= "
                          f"data.n_train = {config.data.n_train}); use pack: 1 for minibatch SGD, "
                          f"got {config.optim.batch_size}")


def gemm_dtype(config: TrialConfig, device: torch.device) -> torch.dtype:
    return patch_cnn_gemm_dtype(config.precision, device)


@dataclass
class Member:
    """One trial config with one seed inside a pack (its position in the pack is ``index``)."""

    index: int
    config: TrialConfig
    scheme: LabelScheme
    generators: dict[str, torch.Generator]
    epoch: int = 0
    seconds: float = 0.0
    history: list[Metrics] = field(default_factory=list)
    status: Status = "running"
    error: str | None = None
    loss_sum: float = 0.0  # train/loss summed over the epochs since the last log
    loss_epochs: int = 0

    @property
    def budget(self) -> int:
        return self.config.epochs_to_train

    @property
    def running(self) -> bool:
        return self.status == "running"

    def result(self, device: torch.device) -> TrialResult:
        return TrialResult(config=to_flat(self.config), history=list(self.history),
                           final=dict(self.history[-1]) if self.history else {},
                           epochs_trained=self.epoch, seconds=self.seconds, device=str(device))


class _Group:
    """Members that share a data set and a filter shape: one GEMM pair per step for all."""

    def __init__(self, data: TaskData, members: list[Member], weights: list[Tensor],
                 dtype: torch.dtype, device: torch.device) -> None:
        first = members[0].config
        self.data, self.members, self.dtype, self.device = data, members, dtype, device
        self.k, self.m, self.q = data.num_classes, first.model.width, first.model.power
        n, p, d = data.x_train.shape
        self.n, self.p, self.d = n, p, d
        self.weight = torch.stack(weights).to(device)  # (B, K·m, d) float32 master weights
        self.buf = torch.zeros_like(self.weight)  # momentum buffers
        self.has_buf = torch.zeros(len(members), dtype=torch.bool, device=device)
        self.x = data.x_train.reshape(n * p, d)
        self.x_low = self.x.to(dtype) if dtype != torch.float32 else self.x
        self.targets = soft_targets(data.y_train, self.k)  # (n, K)
        self.identity = torch.arange(n, device=device)

    # -- membership

    def keep(self, keep: Sequence[bool]) -> None:
        """Drops the members whose entry is False (finished, stopped or diverged)."""
        mask = torch.tensor(list(keep), dtype=torch.bool, device=self.device)
        self.members = [m for m, k in zip(self.members, keep, strict=True) if k]
        self.weight, self.buf, self.has_buf = self.weight[mask], self.buf[mask], self.has_buf[mask]

    # -- the step

    def _gemm(self, a: Tensor, b: Tensor) -> Tensor:
        """``a @ b`` in the group's precision (``b`` already in it), as float32."""
        if self.dtype == torch.float32:
            return a @ b
        return (a.to(self.dtype) @ b).float()

    def _preactivations(self, weight: Tensor, x_flat: Tensor, x_low: Tensor) -> Tensor:
        """(B, K·m, N, P) for flat inputs (N·P, d): one GEMM for every member."""
        b = weight.shape[0]
        w = weight.reshape(b * self.k * self.m, self.d)
        z = self._gemm(w, x_low.T) if self.dtype != torch.float32 else w @ x_flat.T
        return z.view(b, self.k * self.m, -1, self.p)

    def _logits(self, z: Tensor) -> Tensor:
        """(B, N, K) logits from pre-activations (B, K·m, N, P)."""
        b, _, n, p = z.shape
        act = torch.relu(z).pow(self.q)
        return act.view(b, self.k, self.m, n, p).sum(dim=(2, 4)).transpose(1, 2)

    def step(self) -> Tensor:
        """One full-batch GD epoch of every member; returns each member's objective (B,)."""
        members, n = self.members, self.n
        b = len(members)
        mixing = [mixup_active(m.config, m.epoch) for m in members]
        any_mixing = any(mixing)
        if any_mixing:
            ones, identity = torch.ones(n), torch.arange(n)
            lams, partners, gs = [], [], []
            for member, mixes in zip(members, mixing, strict=True):
                if mixes:
                    mix = member.config.mixup
                    plan = sample_mix_plan(n, alpha=mix.alpha, scheme=member.scheme,
                                           fold=mix.fold, generator=member.generators["mix"])
                    lams.append(plan.lam)
                    partners.append(plan.partner)
                    gs.append(plan.label_weight)
                else:  # λ = 1 with the identity partner: z̃ = z exactly
                    lams.append(ones)
                    partners.append(identity)
                    gs.append(ones)
            lam = torch.stack(lams).to(self.device)
            partner = torch.stack(partners).to(self.device)
            g = torch.stack(gs).to(self.device)
            # π is a permutation, so sending (1-λ_i)·∇_i back to π(i) is a gather by π⁻¹
            inverse = torch.argsort(partner, dim=1)

        z = self._preactivations(self.weight, self.x, self.x_low)  # (B, Km, n, P)
        if any_mixing:
            lam4 = lam.view(b, 1, n, 1)
            z = torch.lerp(torch.gather(z, 2, partner.view(b, 1, n, 1).expand_as(z)), z, lam4)
        relu = torch.relu(z)
        if self.q == 1:
            act, slope = relu, (z > 0).to(z.dtype)
        else:
            slope = relu if self.q == 2 else relu.pow(self.q - 1)  # σ'(z) / q
            act = slope * relu
        logits = act.view(b, self.k, self.m, n, self.p).sum(dim=(2, 4)).transpose(1, 2)
        targets = self.targets.expand(b, n, self.k)
        if any_mixing:
            targets = torch.lerp(targets.gather(1, partner.view(b, n, 1).expand(b, n, self.k)),
                                 targets, g.view(b, n, 1))
        log_probs = torch.log_softmax(logits, dim=-1)
        loss = -(targets * log_probs).sum(-1).mean(-1)  # (B,)
        grad_logits = (log_probs.exp() - targets).mul_(self.q / n)  # (B, n, K), times q
        per_filter = grad_logits.transpose(1, 2).repeat_interleave(self.m, dim=1)  # (B, Km, n)
        grad_z = slope.mul_(per_filter.unsqueeze(-1))  # (B, Km, n, P)
        if any_mixing:
            back = (grad_z * (1 - lam4)).gather(2, inverse.view(b, 1, n, 1).expand_as(grad_z))
            grad_z = grad_z.mul_(lam4).add_(back)
        rows = grad_z.reshape(b * self.k * self.m, n * self.p)
        grad_w = self._gemm(rows, self.x_low)
        self._sgd(grad_w.view_as(self.weight))
        for member in members:
            member.epoch += 1
        self.last_mixing = mixing
        return loss

    def _sgd(self, grad: Tensor) -> None:
        """torch.optim.SGD's update (dampening 0, no Nesterov) with per-member settings."""
        configs = [m.config for m in self.members]
        shape = (len(configs), 1, 1)
        lr = torch.tensor([learning_rate(c, m.epoch) for c, m in zip(configs, self.members,
                                                                     strict=True)],
                          device=self.device).view(shape)
        wd = [c.optim.weight_decay for c in configs]
        momentum = [c.optim.momentum for c in configs]
        if any(wd):
            grad = grad + torch.tensor(wd, device=self.device).view(shape) * self.weight
        if any(momentum):
            mom = torch.tensor(momentum, device=self.device).view(shape)
            first = ~self.has_buf.view(shape)
            self.buf = torch.where(first, grad, self.buf * mom + grad)
            uses = mom != 0
            self.has_buf |= uses.view(-1)
            grad = torch.where(uses, self.buf, grad)
        self.weight.sub_(lr * grad)

    # -- evaluation

    @torch.no_grad()
    def evaluate(self, which: Sequence[int]) -> list[Metrics]:
        """The unpacked trainer's ``evaluate`` metrics for the members at positions ``which``."""
        d = self.data
        weight = self.weight[list(which)]
        logits = {}
        for split, x in (("train", d.x_train), ("val", d.x_val), ("test", d.x_test)):
            flat = x.reshape(-1, self.d)
            low = flat.to(self.dtype) if self.dtype != torch.float32 else flat
            logits[split] = self._logits(self._preactivations(weight, flat, low))
        out = []
        for j in range(len(which)):
            metrics: Metrics = {"train/acc": accuracy(logits["train"][j], d.y_train)}
            for split, y, rare in (("val", d.y_val, d.rare_val), ("test", d.y_test, d.rare_test)):
                lg = logits[split][j]
                metrics |= {
                    f"{split}/loss": float(torch.nn.functional.cross_entropy(lg, y)),
                    f"{split}/acc": accuracy(lg, y),
                    f"{split}/acc_common": accuracy(lg, y, ~rare),
                    f"{split}/acc_rare": accuracy(lg, y, rare),
                }
            filters = weight[j].view(self.k, self.m, self.d)
            if d.common_features is not None and d.rare_features is not None:
                metrics["features/common_alignment"] = feature_alignment(filters, d.common_features)
                metrics["features/rare_alignment"] = feature_alignment(filters, d.rare_features)
                if d.train_noise is not None:
                    metrics["features/noise_memorization"] = noise_memorization(
                        filters, d.train_noise, d.y_train)
            out.append(metrics)
        return out


LogCallback = Callable[[Member, Metrics], None]


class Pack:
    """B members trained together; see the module docstring.

    ``advance`` trains every running member one epoch and returns the members that logged at it
    with their metrics (the unpacked trainer's ``advance`` metrics, ``epoch`` included).
    """

    def __init__(self, configs: Iterable[TrialConfig], *,
                 device: torch.device | str | None = None) -> None:
        configs = list(configs)
        if not configs:
            raise ValueError("a pack needs at least one member")
        for config in configs:
            check_packable(config)
        self.device = (resolve_device(configs[0].device) if device is None
                       else torch.device(device))
        self.members = [
            Member(i, c, make_label_scheme(c.mixup.label_scheme, c.mixup.label_param),
                   {"mix": make_generator(c.seed, Stream.MIX)})
            for i, c in enumerate(configs)
        ]
        datasets: dict[str, TaskData] = {}
        grouped: dict[tuple[Any, ...], tuple[TaskData, list[Member], list[Tensor]]] = {}
        for member in self.members:
            c = member.config
            data_key = repr((sorted(dataclasses.asdict(c.data).items()), c.seed))
            if data_key not in datasets:
                datasets[data_key] = build_data(c.data, c.seed).to(self.device)
            data = datasets[data_key]
            model = build_model(c.model, data, make_generator(c.seed, Stream.INIT))
            assert isinstance(model, PatchCNN)
            key = (data_key, c.model.width, c.model.power, gemm_dtype(c, self.device))
            entry = grouped.setdefault(key, (data, [], []))
            entry[1].append(member)
            entry[2].append(model.weight.detach())
        self.groups = [_Group(data, members, weights, key[3], self.device)
                       for key, (data, members, weights) in grouped.items()]

    @property
    def running(self) -> list[Member]:
        return [m for m in self.members if m.running]

    @property
    def done(self) -> bool:
        return not self.running

    def stop(self, index: int, status: Status = "stopped") -> None:
        """Takes member ``index`` out of training (an ASHA cut); the others go on."""
        member = self.members[index]
        if member.running:
            member.status = status
        self._prune()

    def _prune(self) -> None:
        for group in self.groups:
            keep = [m.running for m in group.members]
            if not all(keep):
                group.keep(keep)
        self.groups = [g for g in self.groups if g.members]

    def advance(self) -> list[tuple[Member, Metrics]]:
        """One epoch for every running member; the members that logged, with their metrics."""
        logged: list[tuple[Member, Metrics]] = []
        for group in self.groups:
            start = time.perf_counter()
            loss = group.step().tolist()
            mixing = group.last_mixing
            which = []
            for i, member in enumerate(group.members):
                member.loss_sum += loss[i]
                member.loss_epochs += 1
                if member.epoch % member.config.log_every == 0 or member.epoch >= member.budget:
                    which.append(i)
            evaluated = group.evaluate(which) if which else []
            share = (time.perf_counter() - start) / len(group.members)
            for member in group.members:
                member.seconds += share
            for i, metrics in zip(which, evaluated, strict=True):
                member = group.members[i]
                last_loss = member.loss_sum / member.loss_epochs
                member.loss_sum, member.loss_epochs = 0.0, 0
                if not math.isfinite(last_loss):
                    member.status, member.error = "diverged", (
                        f"train/loss became {last_loss} by epoch {member.epoch} "
                        f"(optim.lr={member.config.optim.lr} may be too large)")
                    continue
                row = {"epoch": float(member.epoch), "train/loss": last_loss, **metrics,
                       "mixup/active": float(mixing[i])}
                member.history.append(row)
                logged.append((member, row))
                if member.epoch >= member.budget:
                    member.status = "done"
        self._prune()
        return logged

    def run(self, on_log: LogCallback | None = None) -> list[TrialResult]:
        """Trains every member to the end of its budget (or its divergence)."""
        while not self.done:
            for member, metrics in self.advance():
                if on_log is not None:
                    on_log(member, metrics)
        return [m.result(self.device) for m in self.members]

    # -- checkpoints

    def state_dict(self) -> dict[str, Any]:
        weights: dict[int, tuple[Tensor, Tensor, bool]] = {}
        for group in self.groups:
            for j, member in enumerate(group.members):
                weights[member.index] = (group.weight[j].cpu().clone(), group.buf[j].cpu().clone(),
                                         bool(group.has_buf[j]))
        return {"members": [
            {"config": to_flat(m.config), "epoch": m.epoch, "seconds": m.seconds,
             "history": [dict(h) for h in m.history], "status": m.status, "error": m.error,
             "loss_sum": m.loss_sum, "loss_epochs": m.loss_epochs,
             "generators": {k: g.get_state() for k, g in m.generators.items()},
             "weight": weights[m.index][0] if m.index in weights else None,
             "buf": weights[m.index][1] if m.index in weights else None,
             "has_buf": weights[m.index][2] if m.index in weights else False}
            for m in self.members]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state["members"]
        if [s["config"] for s in saved] != [to_flat(m.config) for m in self.members]:
            raise ValueError("checkpoint was written by a pack of different trial configs")
        for member, s in zip(self.members, saved, strict=True):
            member.epoch, member.seconds = int(s["epoch"]), float(s["seconds"])
            member.history = [dict(h) for h in s["history"]]
            member.status, member.error = s["status"], s["error"]
            member.loss_sum, member.loss_epochs = float(s["loss_sum"]), int(s["loss_epochs"])
            for name, g in member.generators.items():
                g.set_state(s["generators"][name])
        for group in self.groups:
            for j, member in enumerate(group.members):
                s = saved[member.index]
                if s["weight"] is not None:
                    group.weight[j] = s["weight"].to(self.device)
                    group.buf[j] = s["buf"].to(self.device)
                    group.has_buf[j] = bool(s["has_buf"])
        self._prune()


def train_packed(configs: Sequence[TrialConfig], *, device: torch.device | str | None = None,
                 on_log: LogCallback | None = None) -> list[TrialResult]:
    """Trains ``configs`` (each with its own seed) as one pack; results in the same order."""
    return Pack(configs, device=device).run(on_log)
