"""The reference trainer: one trial of one seed, written the textbook way (the test oracle).

The platform trains every trial as a member of a pack (mixup_core.training); this is the
unpacked trainer it replaced, kept as the oracle the packed engines are checked against
(tests/core/test_packed.py, test_autograd_pack.py) and as the baseline of benchmarks/.
:class:`Trainer` trains until the next logging epoch (``advance``) and hands back the metrics;
the caller (the CLI, Ray Tune, a benchmark) decides what to print, report or store. Its
``state_dict`` holds weights, optimiser state, epoch, history and every generator state, so a
trial resumed from a checkpoint ends bit-for-bit where an uninterrupted one does.

Image data sets take the same loop: their uint8 images live on the training device and an
:class:`~mixup_core.data.device_batches.InputPipeline` augments and normalises each batch there;
Mixup then mixes the normalised batch like any other input. On CUDA, image models run in
bfloat16 autocast with channels-last tensors unless ``precision`` is ``float32``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from mixup_core.config import TrialConfig, to_flat
from mixup_core.data import TaskData, build_data
from mixup_core.data.device_batches import make_inputs
from mixup_core.diagnostics import accuracy, feature_alignment, noise_memorization
from mixup_core.mixing import (
    MixPlan,
    mix_inputs,
    mix_targets,
    sample_mix_plan,
    soft_cross_entropy,
    soft_targets,
)
from mixup_core.models import build_model
from mixup_core.models.contract import ClosedFormLoss, HasFilters, MixesLinearly
from mixup_core.models.patch_cnn import PatchCNN
from mixup_core.precision import patch_cnn_gemm_dtype
from mixup_core.schedule import learning_rate, mixup_active
from mixup_core.schemes import make_label_scheme
from mixup_core.seeding import Stream, make_generator
from mixup_core.training import Metrics, TrainingDiverged, TrialResult, resolve_device

LogCallback = Callable[[int, Metrics], None]


class Trainer:
    """Trains one seed of one trial config; see the module docstring."""

    def __init__(
        self, config: TrialConfig, *, device: torch.device | str | None = None,
        data: TaskData | None = None,
    ) -> None:
        self.config = config
        self.device = resolve_device(config.device) if device is None else torch.device(device)
        if data is None:
            data = build_data(config.data, config.seed)
        self.data = data.to(self.device)
        self.model = build_model(config.model, data, make_generator(config.seed, Stream.INIT))
        if isinstance(self.model, PatchCNN):
            self.model.gemm_dtype = patch_cnn_gemm_dtype(config.precision, self.device)
        # bfloat16 and channels-last pay off for convolutions on CUDA only.
        self.reduced_precision = (data.image is not None and self.device.type == "cuda"
                                  and config.precision == "auto")
        self.model.to(self.device)
        if self.reduced_precision:
            self.model.to(memory_format=torch.channels_last)
        self.inputs = make_inputs(self.data, augment=config.data.augment, device=self.device,
                                  channels_last=self.reduced_precision)
        opt = config.optim
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=opt.lr, momentum=opt.momentum,
            weight_decay=opt.weight_decay,
        )
        self.scheme = make_label_scheme(config.mixup.label_scheme, config.mixup.label_param)
        self.generators = {
            "mix": make_generator(config.seed, Stream.MIX),
            "batches": make_generator(config.seed, Stream.BATCHES),
            "augment": make_generator(config.seed, Stream.AUGMENT),
        }
        self.epoch = 0
        self.history: list[Metrics] = []
        self.seconds = 0.0
        self._clean_targets = soft_targets(self.data.y_train, self.data.num_classes)

    @property
    def total_epochs(self) -> int:
        return self.config.epochs_to_train

    @property
    def done(self) -> bool:
        return self.epoch >= self.total_epochs

    def _batches(self) -> list[Tensor | None]:
        n, size = self.data.y_train.shape[0], self.config.optim.batch_size
        if size is None or size >= n:
            return [None]  # full batch: no indexing, no copy
        order = torch.randperm(n, generator=self.generators["batches"]).to(self.device)
        return list(order.split(size))

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.reduced_precision:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, x: Tensor, targets: Tensor, mixing: bool) -> Tensor:
        """One optimiser step on model inputs ``x`` and soft ``targets``, mixed when ``mixing``.

        ``x`` is what the model reads (for images: a normalised batch from ``self.inputs``);
        returns the loss as a detached tensor.
        """
        plan: MixPlan | None = None
        if mixing:
            mix = self.config.mixup
            plan = sample_mix_plan(
                targets.shape[0], alpha=mix.alpha, scheme=self.scheme, fold=mix.fold,
                generator=self.generators["mix"],
            ).to(self.device)
            targets = mix_targets(targets, plan)
        model = self.model
        if isinstance(model, ClosedFormLoss):
            loss = model.loss_and_grad(x, targets, plan)
        else:
            self.optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                if plan is not None and isinstance(model, MixesLinearly):
                    logits = model(x, mix=plan)
                else:
                    logits = self.model(x if plan is None else mix_inputs(x, plan))
                loss = soft_cross_entropy(logits.float(), targets)
            loss.backward()
        self.optimizer.step()
        return loss.detach()

    def train_epoch(self) -> Tensor:
        """One epoch (one step for full-batch GD); returns the mean objective as a tensor."""
        mixing = mixup_active(self.config, self.epoch)
        lr = learning_rate(self.config, self.epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total = torch.zeros((), device=self.device)
        batches = self._batches()
        for idx in batches:
            x, t = self.data.x_train, self._clean_targets
            if idx is not None:
                x, t = x[idx], t[idx]
            x = self.inputs.train_batch(x, self.generators["augment"])
            total += self.train_step(x, t, mixing)
        self.epoch += 1
        return total / len(batches)

    def _chunks(self, x: Tensor) -> Iterator[Tensor]:
        chunk = self.inputs.eval_chunk
        yield from ([x] if chunk is None else x.split(chunk))

    def _logits(self, x: Tensor) -> Tensor:
        """Logits for stored inputs ``x``, un-augmented, fed in chunks of the pipeline's size."""
        parts = []
        with self._autocast():
            for part in self._chunks(x):
                parts.append(self.model(self.inputs.eval_batch(part)).float())
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    @torch.no_grad()
    def evaluate(self) -> Metrics:
        """Clean-data metrics and feature diagnostics for the current weights."""
        d = self.data
        self.model.eval()
        train_logits = self._logits(d.x_train)
        metrics = {"train/acc": accuracy(train_logits, d.y_train)}
        for split, x, y, rare in (("val", d.x_val, d.y_val, d.rare_val),
                                  ("test", d.x_test, d.y_test, d.rare_test)):
            logits = self._logits(x)
            metrics |= {
                f"{split}/loss": float(torch.nn.functional.cross_entropy(logits, y)),
                f"{split}/acc": accuracy(logits, y),
                f"{split}/acc_common": accuracy(logits, y, ~rare),
                f"{split}/acc_rare": accuracy(logits, y, rare),
            }
        self.model.train()
        if (isinstance(self.model, HasFilters) and d.common_features is not None
                and d.rare_features is not None):
            w = self.model.filters()
            metrics["features/common_alignment"] = feature_alignment(w, d.common_features)
            metrics["features/rare_alignment"] = feature_alignment(w, d.rare_features)
            if d.train_noise is not None:
                metrics["features/noise_memorization"] = noise_memorization(
                    w, d.train_noise, d.y_train
                )
        return metrics

    def advance(self) -> Metrics:
        """Trains to the next logging epoch; returns its metrics (``epoch`` included)."""
        if self.done:
            raise RuntimeError("the trial has already trained its whole budget")
        start = time.perf_counter()
        every = self.config.log_every
        loss_sum, epochs = torch.zeros((), device=self.device), 0
        while True:
            mixing = mixup_active(self.config, self.epoch)
            loss_sum += self.train_epoch()
            epochs += 1
            if self.epoch % every == 0 or self.done:
                break
        last_loss = float(loss_sum / epochs)
        if not math.isfinite(last_loss):
            raise TrainingDiverged(
                f"train/loss became {last_loss} by epoch {self.epoch} "
                f"(optim.lr={self.config.optim.lr} may be too large)"
            )
        metrics = {"epoch": float(self.epoch), "train/loss": last_loss, **self.evaluate(),
                   "mixup/active": float(mixing)}
        self.seconds += time.perf_counter() - start
        self.history.append(metrics)
        return metrics

    def run(self, on_log: LogCallback | None = None) -> TrialResult:
        """Trains the rest of the budget, calling ``on_log(epoch, metrics)`` at each log point."""
        while not self.done:
            metrics = self.advance()
            if on_log is not None:
                on_log(self.epoch, metrics)
        return self.result()

    def result(self) -> TrialResult:
        return TrialResult(
            config=to_flat(self.config), history=list(self.history),
            final=dict(self.history[-1]) if self.history else {},
            epochs_trained=self.epoch, seconds=self.seconds, device=str(self.device),
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "seconds": self.seconds,
            "history": [dict(h) for h in self.history],
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "generators": {name: g.get_state() for name, g in self.generators.items()},
            "config": to_flat(self.config),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["config"] != to_flat(self.config):
            raise ValueError("checkpoint was written by a different trial config")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for name, g in self.generators.items():
            g.set_state(state["generators"][name])
        self.epoch = int(state["epoch"])
        self.seconds = float(state["seconds"])
        self.history = [dict(h) for h in state["history"]]


def train(config: TrialConfig, *, on_log: LogCallback | None = None,
          device: torch.device | str | None = None) -> TrialResult:
    """Runs one trial config from scratch to the end of its budget."""
    return Trainer(config, device=device).run(on_log)
