"""A member: one trial config with one seed, the unit every engine trains.

A :class:`Member` holds what belongs to one training and not to the computation it shares:
its config, its label scheme, its seeded generators, its epoch, compute seconds, logged
history, status and the train-loss accumulator between logs. Its weights and optimiser state
live in its engine's stacked tensors (:mod:`mixup_core.training.closed_form`,
:mod:`mixup_core.training.autograd`); the pack's state file holds both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from mixup_core.config import TrialConfig, to_flat
from mixup_core.mixing import sample_mix_plan
from mixup_core.schemes import LabelScheme

Metrics = dict[str, float]
Status = Literal["running", "done", "stopped", "diverged"]


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the message names the epoch."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class TrialResult:
    """What a finished training leaves: its config, every logged epoch and the final metrics."""

    config: dict[str, Any]
    history: list[Metrics]
    final: Metrics
    epochs_trained: int
    seconds: float
    device: str = "cpu"


def divergence_line(member: Member, loss: float) -> str:
    """The one line that says a member diverged, naming the epoch and the learning rate."""
    return (f"train/loss became {loss} by epoch {member.epoch} "
            f"(optim.lr={member.config.optim.lr} may be too large)")


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

    @property
    def logs_now(self) -> bool:
        """Whether the epoch just trained is one this member logs."""
        return self.epoch % self.config.log_every == 0 or self.epoch >= self.budget

    def result(self, device: torch.device) -> TrialResult:
        return TrialResult(config=to_flat(self.config), history=list(self.history),
                           final=dict(self.history[-1]) if self.history else {},
                           epochs_trained=self.epoch, seconds=self.seconds, device=str(device))

    def state_dict(self) -> dict[str, Any]:
        return {"config": to_flat(self.config), "epoch": self.epoch, "seconds": self.seconds,
                "history": [dict(h) for h in self.history], "status": self.status,
                "error": self.error, "loss_sum": self.loss_sum, "loss_epochs": self.loss_epochs,
                "generators": {k: g.get_state() for k, g in self.generators.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.seconds = int(state["epoch"]), float(state["seconds"])
        self.history = [dict(h) for h in state["history"]]
        self.status, self.error = state["status"], state["error"]
        self.loss_sum, self.loss_epochs = float(state["loss_sum"]), int(state["loss_epochs"])
        for name, g in self.generators.items():
            g.set_state(state["generators"][name])


def mix_plans(members: list[Member], mixing: list[bool], size: int,
              device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Each member's Mixup plan of a batch of ``size`` points as (B, size) tensors λ, partner
    and label weight g on ``device``, drawn from its mix stream as the reference trainer draws
    it; λ = 1, the identity partner and g = 1 (exactly the clean batch) where it does not mix."""
    lams, partners, gs = [], [], []
    for member, mixes in zip(members, mixing, strict=True):
        if mixes:
            mix = member.config.mixup
            plan = sample_mix_plan(size, alpha=mix.alpha, scheme=member.scheme, fold=mix.fold,
                                   generator=member.generators["mix"])
            lams.append(plan.lam)
            partners.append(plan.partner)
            gs.append(plan.label_weight)
        else:
            lams.append(torch.ones(size))
            partners.append(torch.arange(size))
            gs.append(torch.ones(size))
    lam, partner, g = (torch.stack(t).to(device) for t in (lams, partners, gs))
    return lam, partner, g
