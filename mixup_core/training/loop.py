"""The one training loop: a :class:`Pack` of B members, each one trial config with one seed.

Every training runs here, a single trial as a pack of one. The pack sorts its members into
groups that share one computation, each trained by an engine:

* the closed-form engine (:mod:`mixup_core.training.closed_form`): the patch CNN on the
  feature-noise task, full batch (Gram or direct form) or minibatch SGD;
* the autograd engine (:mod:`mixup_core.training.autograd`): image models, their weights
  stacked along a member axis (grouped convolutions, or ``torch.func.vmap``).

The loop is the engines' common part: one epoch of every group, the train loss accumulated per
member, the members that log at this epoch evaluated together (:mod:`mixup_core.training.metrics`),
the divergence check and its line, the log row, the result, and the state file. A member that
reaches its budget, is stopped (:meth:`Pack.stop`, an ASHA cut) or diverges leaves its group;
the others go on untouched.

Each member draws from the same seeded streams (data, initial weights, minibatch order,
augmentation, mixing) in the same order as the reference trainer (tests/core/reference_trainer.py,
one seed of one config, written the textbook way), so in float32 a member reproduces it up to
the order of floating-point sums; tests/core/test_packed.py and test_autograd_pack.py state
the tolerances.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from mixup_core.config import TrialConfig, to_flat
from mixup_core.data import TaskData, build_data
from mixup_core.models import build_model
from mixup_core.models.patch_cnn import PatchCNN
from mixup_core.schemes import make_label_scheme
from mixup_core.seeding import Stream, make_generator
from mixup_core.training.autograd import AutogradGroup, autograd_packable
from mixup_core.training.autograd import data_key as autograd_data_key
from mixup_core.training.autograd import group_key as autograd_group_key
from mixup_core.training.closed_form import ClosedFormGroup, gemm_dtype, use_gram
from mixup_core.training.member import (
    Member,
    Metrics,
    Status,
    TrainingDiverged,
    TrialResult,
    divergence_line,
    resolve_device,
)

LogCallback = Callable[[Member, Metrics], None]


class Pack:
    """B members trained together; see the module docstring.

    ``advance`` trains every running member one epoch and returns the members that logged at it
    with their metrics (the unpacked trainer's ``advance`` metrics, ``epoch`` included).
    """

    def __init__(self, configs: Iterable[TrialConfig], *,
                 device: torch.device | str | None = None, gram: bool | None = None) -> None:
        configs = list(configs)
        if not configs:
            raise ValueError("a pack needs at least one member")
        self.device = (resolve_device(configs[0].device) if device is None
                       else torch.device(device))
        self.members = [
            Member(i, c, make_label_scheme(c.mixup.label_scheme, c.mixup.label_param),
                   {"mix": make_generator(c.seed, Stream.MIX)})
            for i, c in enumerate(configs)
        ]
        datasets: dict[str, TaskData] = {}
        grouped: dict[tuple[Any, ...], tuple[TaskData, list[Member], list[Tensor]]] = {}
        images: dict[tuple[Any, ...], tuple[list[Member], list[TaskData]]] = {}
        for member in self.members:
            c = member.config
            data_key = repr((sorted(dataclasses.asdict(c.data).items()), c.seed))
            if autograd_packable(c) is None:  # the autograd engine stacks and moves its data
                if data_key not in datasets:
                    datasets[data_key] = build_data(c.data, c.seed)
                data = datasets[data_key]
                entry_images = images.setdefault(
                    ("autograd", autograd_group_key(c), autograd_data_key(data)), ([], []))
                entry_images[0].append(member)
                entry_images[1].append(data)
                continue
            if data_key not in datasets:
                datasets[data_key] = build_data(c.data, c.seed).to(self.device)
            data = datasets[data_key]
            model = build_model(c.model, data, make_generator(c.seed, Stream.INIT))
            assert isinstance(model, PatchCNN)
            size = c.optim.batch_size if c.optim.batch_size is not None else c.data.n_train
            key = (data_key, c.model.width, c.model.power, gemm_dtype(c, self.device),
                   min(size, data.y_train.shape[0]))  # members of a group share their batch size
            entry = grouped.setdefault(key, (data, [], []))
            entry[1].append(member)
            entry[2].append(model.weight.detach())
        self.groups: list[ClosedFormGroup | AutogradGroup] = [
            ClosedFormGroup(data, members, weights, key[3], self.device,
                   gram=use_gram(data) if gram is None else gram)
            for key, (data, members, weights) in grouped.items()]
        self.groups += [AutogradGroup(members, self.device, data=data)
                        for members, data in images.values()]

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
                if member.logs_now:
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
                    member.status, member.error = "diverged", divergence_line(member, last_loss)
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
        trained = {member.index: group.member_state(j)
                   for group in self.groups for j, member in enumerate(group.members)}
        # "trained" is None once the member has left the pack
        return {"members": [m.state_dict() | {"trained": trained.get(m.index)}
                            for m in self.members]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state["members"]
        if [s["config"] for s in saved] != [to_flat(m.config) for m in self.members]:
            raise ValueError("checkpoint was written by a pack of different trial configs")
        for member, s in zip(self.members, saved, strict=True):
            member.load_state_dict(s)
        for group in self.groups:
            for j, member in enumerate(group.members):
                if saved[member.index]["trained"] is not None:
                    group.load_member_state(j, saved[member.index]["trained"])
        self._prune()


def train_packed(configs: Sequence[TrialConfig], *, device: torch.device | str | None = None,
                 on_log: LogCallback | None = None, gram: bool | None = None) -> list[TrialResult]:
    """Trains ``configs`` (each with its own seed) as one pack; results in the same order.

    ``gram`` forces the Gram (True) or direct (False) form; None picks by :func:`use_gram`.
    """
    return Pack(configs, device=device, gram=gram).run(on_log)


def train(config: TrialConfig, *, on_log: Callable[[int, Metrics], None] | None = None,
          device: torch.device | str | None = None) -> TrialResult:
    """Trains one config (one seed) from scratch to the end of its budget, as a pack of one;
    ``on_log(epoch, metrics)`` at each logged epoch. Raises TrainingDiverged (naming the
    epoch) when its loss becomes NaN or infinite."""
    pack = Pack([config], device=device)
    result = pack.run(None if on_log is None else lambda m, metrics: on_log(m.epoch, metrics))[0]
    if pack.members[0].status == "diverged":
        raise TrainingDiverged(pack.members[0].error)
    return result
