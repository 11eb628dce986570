"""The autograd engine: B image-model members of one architecture trained as one computation.

An :class:`AutogradGroup` holds the weights of every member stacked along a leading member axis
(one tensor per parameter, shape (B, *shape), named as in the model's ``state_dict``), and
trains them all with one forward, one backward and one optimiser update per minibatch. Each
member keeps everything the reference trainer (tests/core/reference_trainer.py) gives a trial:
its seed (initial weights from its INIT stream, its own data set, minibatch order, augmentation
and mixing drawn from its own generators in the reference trainer's order), α, label scheme and
parameter, fold, switch-off epoch and stop mode, learning rate and schedule, momentum, weight
decay, epoch budget, its own BatchNorm statistics and its own evaluation. Members must share
what shapes the computation: the architecture, the data set's name and tensor shapes and the
batch size (:func:`group_key`, :func:`data_key`).

Two layouts run the same stacked weights (``layout``):

* ``grouped`` (HFTA, Wang et al., MLSys 2021): activations are (N, B·C, H, W), member b owning
  channels b·C..(b+1)·C. Every ``Conv2d`` becomes one convolution with B times the groups,
  ``BatchNorm2d`` one batch norm over B·C channels (its statistics are per channel, hence per
  member), ``Linear`` one batched matmul; channel-local operations (ReLU, pooling, sums,
  flattening a 1×1 map) run unchanged, so the model's own ``forward`` runs on the fused modules.
  A probe at construction checks the fused forward against the member's own.
* ``vmap``: ``torch.func.vmap`` over ``functional_call`` of the model, for any module whose
  operations have batching rules; BatchNorm buffers are stacked too, so vmap updates each
  member's running statistics in place.

Measured on this 2-core CPU (float32, one torch thread, training epochs of B members that differ
in learning rate against one reference trainer in the same process, medians of interleaved
rounds; the ratio is the pack's images per second over the unpacked trainer's, i.e. how much faster B
trainings run packed than one after another):

========================================  ===  =======  ==========  ====
model, images (batch)                     B    grouped  grouped+CL  vmap
========================================  ===  =======  ==========  ====
small_cnn (32 ch), digits 8×8 (64)        1    1.01     1.00        0.76
                                          4    1.18     1.60        0.84
                                          16   1.07     1.28        0.76
small_cnn (32 ch), MNIST-5k 28×28 (64)    1    0.96     1.01        0.87
                                          4    1.01     1.28        0.64
                                          16   0.55     0.70        0.33
preact_resnet18 (16 ch), 32×32 (32)       1    0.95     1.15        0.79
                                          4    1.06     1.15        0.79
                                          8    0.90     1.01        0.74
========================================  ===  =======  ==========  ====

(two threads, digits: B = 4: 1.33, 1.71, 0.73; B = 16: 1.53, 1.83, 1.21.) ``vmap`` moves the
member axis into and out of every convolution's batching rule; ``grouped`` runs the same grouped
convolutions without those copies and is the choice for both models (:data:`LAYOUTS`), ``vmap``
the fallback for models the grouped layout cannot run. Channels-last activations (``CL``) are
faster on the CPU but sum the weight gradients in another order, and ``preact_resnet18`` then
drifts 1e-3 from the unpacked run within two epochs (accuracies differ); they are used where the
reference trainer uses them (bfloat16 on CUDA). On a CPU packing does not make the arithmetic faster: one
small network already keeps a core busy. The table's default malloc also makes every activation
above glibc's mmap threshold (32 MB at most; a pack's are B times a trial's) a fresh mapping
whose pages fault in at each step: 45% of a packed MNIST-5k epoch at B = 16. With the heap kept
(``benchmarks/packed_images.py --keep-heap``) packs run at 0.97-1.03x on MNIST-5k, 1.0-1.4x on
digits and 0.82-1.01x for ``preact_resnet18`` for B up to 32. Packs of image trials pay on
accelerators that one small network leaves idle (not measured here: no device was lent).

In float32 the forward of either layout is bitwise the unpacked model's on the same inputs; the
backward's sums and the optimiser's roundings differ by about 1e-7 relative per step
(tests/core/test_autograd_pack.py states the tolerance against the reference trainer).

Optimiser arithmetic is torch.optim.SGD's (weight decay added to the gradient, the momentum
buffer set to the first gradient, dampening 0, no Nesterov) as tensor operations over the
member axis with per-member learning rate, momentum and weight decay: one loop over parameter
tensors, none over members. Only the random draws (minibatch order, crops, Mixup plans) loop
over members, each from its own CPU generator, as the reference trainer draws them.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from mixup_core.catalog import MODEL_INPUTS
from mixup_core.config import TrialConfig
from mixup_core.data import TaskData, build_data
from mixup_core.data.device_batches import (
    EVAL_CHUNK,
    CropFlipPlan,
    Normalise,
    apply_crop_flip,
    sample_crop_flip,
)
from mixup_core.mixing import soft_targets
from mixup_core.models import build_model
from mixup_core.models.contract import ClosedFormLoss, HasFilters, MixesLinearly
from mixup_core.schedule import learning_rate, mixup_active
from mixup_core.seeding import Stream, make_generator
from mixup_core.training.member import mix_plans
from mixup_core.training.metrics import Metrics, accuracy, ridge_transfer, rows, split_columns

if TYPE_CHECKING:
    from mixup_core.training.member import Member

Layout = Literal["grouped", "vmap"]

#: The layout each model trains in, from the measurements in the module docstring; ``vmap``
#: for models not listed.
LAYOUTS: dict[str, Layout] = {"small_cnn": "grouped", "preact_resnet18": "grouped"}


def autograd_packable(config: TrialConfig) -> str | None:
    """None when ``config`` can be a member of an :class:`AutogradGroup`, else one line why."""
    if MODEL_INPUTS.get(config.model.name) != "images" or not config.data.is_image:
        return (f"model.name {config.model.name!r} on data.name {config.data.name!r} trains in "
                f"the closed-form engine (mixup_core.training.closed_form), not the autograd engine")
    return None


def group_key(config: TrialConfig) -> tuple[Any, ...]:
    """What members of one group must share in their configs; they must also agree on
    :func:`data_key` of their data sets, which can differ by seed (``data.max_train`` draws a
    random subset, and the validation split holds out a share of each class of it)."""
    return (config.model.name, config.model.channels, config.data.name,
            config.optim.batch_size, config.precision, config.device)


def data_key(data: TaskData) -> tuple[Any, ...]:
    """The shapes (and classes) of ``data`` that members of one group must share."""
    return (tuple(data.x_train.shape), tuple(data.x_val.shape), tuple(data.x_test.shape),
            data.num_classes, data.image, data.noise_test is not None,
            tuple((name, tuple(x.shape)) for name, (x, _) in sorted(data.probes.items())))


# -- the grouped layout: the model's own forward on channel-fused modules


class _GroupedConv2d(nn.Module):
    """A Conv2d whose weight (B, out, in/g, kh, kw) runs as one convolution with B·g groups."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.padding_mode != "zeros":
            raise ValueError(f"grouped layout: padding_mode {conv.padding_mode!r} is not supported")
        self.weight = conv.weight
        self.bias = conv.bias
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.groups = conv.groups

    def forward(self, x: Tensor) -> Tensor:
        b = self.weight.shape[0]
        bias = None if self.bias is None else self.bias.flatten()
        return F.conv2d(x, self.weight.flatten(0, 1), bias, self.stride, self.padding,
                        self.dilation, self.groups * b)


class _GroupedBatchNorm(nn.Module):
    """BatchNorm2d over B·C channels: per channel, so statistics and buffers stay per member."""

    running_mean: Tensor | None
    running_var: Tensor | None
    num_batches_tracked: Tensor | None

    def __init__(self, norm: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__()
        if norm.momentum is None:
            raise ValueError("grouped layout: BatchNorm with momentum None (cumulative averages) "
                             "is not supported")
        self.weight, self.bias = norm.weight, norm.bias
        self.register_buffer("running_mean", norm.running_mean)
        self.register_buffer("running_var", norm.running_var)
        self.register_buffer("num_batches_tracked", norm.num_batches_tracked)
        self.momentum, self.eps = norm.momentum, norm.eps
        self.track_running_stats = norm.track_running_stats

    def forward(self, x: Tensor) -> Tensor:
        tracked = self.track_running_stats and self.running_mean is not None
        if self.training and tracked and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)

        def flat(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.flatten()

        use_batch_stats = self.training or not tracked
        keep_stats = not self.training or tracked
        return F.batch_norm(
            x, flat(self.running_mean) if keep_stats else None,
            flat(self.running_var) if keep_stats else None, flat(self.weight), flat(self.bias),
            use_batch_stats, self.momentum, self.eps)


class _GroupedLinear(nn.Module):
    """A Linear on (N, B·in) activations: one batched matmul, output (N, B·out)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.weight, self.bias = linear.weight, linear.bias

    def forward(self, x: Tensor) -> Tensor:
        b, out, inputs = self.weight.shape
        if x.dim() != 2:
            raise ValueError(f"grouped layout: Linear on a {x.dim()}-D input is not supported")
        per_member = x.view(x.shape[0], b, inputs).transpose(0, 1)  # (B, N, in)
        if self.bias is None:
            y = torch.bmm(per_member, self.weight.transpose(1, 2))
        else:
            y = torch.baddbmm(self.bias.unsqueeze(1), per_member, self.weight.transpose(1, 2))
        return y.transpose(0, 1).reshape(x.shape[0], b * out)


def _grouped(template: nn.Module) -> nn.Module:
    """A copy of ``template`` (on the meta device) running the grouped layout.

    Raises:
        ValueError: a module with parameters or buffers of its own has no grouped form.
    """
    fused = copy.deepcopy(template)
    for name, module in list(fused.named_modules()):
        replacement: nn.Module | None = None
        if type(module) is nn.Conv2d:
            replacement = _GroupedConv2d(module)
        elif type(module) is nn.BatchNorm2d:
            replacement = _GroupedBatchNorm(module)
        elif type(module) is nn.Linear:
            replacement = _GroupedLinear(module)
        elif any(True for _ in module.parameters(recurse=False)) or any(
                True for _ in module.buffers(recurse=False)):
            raise ValueError(f"grouped layout: no grouped form of {type(module).__name__}")
        if replacement is not None:
            parent_name, _, child = name.rpartition(".")
            setattr(fused.get_submodule(parent_name), child, replacement)
    return fused


# -- the group


def _per_member(values: Tensor, like: Tensor) -> Tensor:
    """(B,) values as (B, 1, ...) broadcasting over a (B, *shape) tensor ``like``."""
    return values.view(-1, *([1] * (like.dim() - 1)))


class AutogradGroup:
    """Members of one architecture and data shape, trained as one computation.

    Args:
        members: the members (their configs must agree on :func:`group_key`); their
            ``generators`` gain "batches" and "augment" streams where missing.
        device: where weights, data and the step live.
        data: each member's data set (default: ``build_data(config.data, config.seed)``); they
            must agree on :func:`data_key`. Members given the same object share its tensors.
        layout: ``grouped`` or ``vmap`` (default: :data:`LAYOUTS`).
    """

    def __init__(self, members: list[Member], device: torch.device | str, *,
                 data: Sequence[TaskData] | None = None, layout: Layout | None = None) -> None:
        if not members:
            raise ValueError("a group needs at least one member")
        self.device = torch.device(device)
        self.members = list(members)
        first = members[0].config
        for member in members:
            if (reason := autograd_packable(member.config)) is not None:
                raise ValueError(reason)
            if group_key(member.config) != group_key(first):
                raise ValueError(f"member {member.index} differs from member {members[0].index} "
                                 f"in {group_key(member.config)} vs {group_key(first)}")
            seed = member.config.seed
            member.generators.setdefault("batches", make_generator(seed, Stream.BATCHES))
            member.generators.setdefault("augment", make_generator(seed, Stream.AUGMENT))
        distinct = self._load_data(data)
        self.augments = [m.config.data.augment and (self.padding > 0 or self.flip)
                         for m in self.members]
        self.layout: Layout = layout or LAYOUTS.get(first.model.name, "vmap")
        self.reduced_precision = False  # the probe of the grouped layout runs in float32
        self.channels_last = False
        self._build_models(distinct[0])
        # bfloat16 autocast on CUDA, as the reference trainer runs image models there
        self.reduced_precision = self.device.type == "cuda" and first.precision == "auto"
        # channels-last activations where the reference trainer uses them (bfloat16 on CUDA); on the CPU
        # they make grouped convolutions faster but sum weight gradients in another order
        self.channels_last = self.reduced_precision
        self.last_mixing: list[bool] = []

    # -- construction

    def _load_data(self, given: Sequence[TaskData] | None) -> list[TaskData]:
        """Stacks the distinct data sets once each (U of them); ``data_index`` maps members."""
        if given is None:
            built: dict[tuple[Any, ...], TaskData] = {}
            given = []
            for member in self.members:
                key = (repr(member.config.data), member.config.seed)
                if key not in built:
                    built[key] = build_data(member.config.data, member.config.seed)
                given.append(built[key])
        distinct: list[TaskData] = []
        index = []
        for member, data in zip(self.members, given, strict=True):
            if data.image is None:
                raise ValueError(f"member {member.index}: the autograd engine trains on images")
            if data_key(data) != data_key(given[0]):
                raise ValueError(f"member {member.index}: data shapes {data_key(data)} differ from "
                                 f"{data_key(given[0])}; such members go in separate groups")
            position = next((i for i, d in enumerate(distinct) if d is data), None)
            if position is None:
                position = len(distinct)
                distinct.append(data)
            index.append(position)
        self.data_index = torch.tensor(index, device=self.device)
        self._stack_data(distinct)
        return distinct

    def _stack_data(self, data: list[TaskData]) -> None:
        """Every split of the distinct data sets as (U, N, ...) tensors on the device, with each
        set's normalisation (U, 1, C, 1, 1) and the soft targets of its training split."""
        k, spec = data[0].num_classes, data[0].image
        assert spec is not None

        def stack(tensors: list[Tensor]) -> Tensor:
            return torch.stack(tensors).to(self.device)

        self.splits: dict[str, Tensor] = {
            f"{part}_{split}": stack([getattr(d, f"{part}_{split}") for d in data])
            for split in ("train", "val", "test") for part in ("x", "y", "rare")}
        self.splits["targets"] = soft_targets(self.splits["y_train"], k)  # (U, n, K)
        if data[0].noise_test is not None:  # feature-noise classes, for */rare_err_noise
            for split in ("val", "test"):
                self.splits[f"noise_{split}"] = stack([getattr(d, f"noise_{split}") for d in data])
        self.probes = {name: (stack([d.probes[name][0] for d in data]),
                              stack([d.probes[name][1] for d in data]))
                       for name in sorted(data[0].probes)}
        self.num_classes = k
        normalisers = [Normalise(d.image, self.device) for d in data if d.image is not None]
        self.splits["scale"] = stack([nz.scale for nz in normalisers])
        self.splits["shift"] = stack([nz.shift for nz in normalisers])
        self.padding, self.flip = spec.crop_padding, spec.flip

    def _build_models(self, data: TaskData) -> None:
        """Each member's model as the reference trainer builds it (from its INIT stream; builders read
        only the data's shapes and classes, which members share), stacked."""
        models = []
        for member in self.members:
            model = build_model(member.config.model, data,
                                make_generator(member.config.seed, Stream.INIT))
            if isinstance(model, (ClosedFormLoss, MixesLinearly, HasFilters)):
                raise ValueError(f"model.name {member.config.model.name!r}: a closed-form, "
                                 f"linearly mixing or filter-reporting model packs elsewhere")
            models.append(model)
        self.state_names = list(models[0].state_dict())
        params, buffers = stack_module_state(models)
        self.params: dict[str, Tensor] = {
            k: nn.Parameter(v.detach().to(self.device)) for k, v in params.items()}
        self.buffers = {k: v.to(self.device) for k, v in buffers.items()}
        self.momentum = {k: torch.zeros_like(v, requires_grad=False)
                         for k, v in self.params.items()}
        self.has_buf = [False] * len(models)  # whether SGD holds a momentum buffer yet
        self.template = copy.deepcopy(models[0]).to("meta")
        self.fused = _grouped(self.template) if self.layout == "grouped" else None
        if self.fused is not None:
            self._bind()
            self._check_grouped(models[0])

    def _bind(self) -> None:
        """Makes the stacked tensors the grouped model's own (no swapping in at each call)."""
        assert self.fused is not None
        for name, tensor in (self.params | self.buffers).items():
            module, _, leaf = name.rpartition(".")
            setattr(self.fused.get_submodule(module), leaf, tensor)

    @torch.no_grad()
    def _check_grouped(self, model: nn.Module) -> None:
        """Refuses a model whose forward mixes channels, which the grouped layout cannot run:
        member 0's logits on a probe batch must be its own model's (in eval mode)."""
        shape = self.splits["x_train"].shape[2:]
        probe = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
        expected = model.eval()(probe)
        inputs = probe.to(self.device).expand(len(self.members), *probe.shape)
        try:
            logits = self._logits(inputs, train=False)[0].cpu()
        except (RuntimeError, ValueError):  # shapes that only fit one member's channels
            logits = None
        if logits is None or not torch.allclose(logits, expected, rtol=1e-4, atol=1e-5):
            raise ValueError(f"model.name {self.members[0].config.model.name!r}: its forward "
                             f"mixes channels, so it cannot run in the grouped layout (use vmap)")

    # -- the forward

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.reduced_precision:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _logits(self, x: Tensor, *, train: bool, which: Tensor | None = None) -> Tensor:
        """Logits (B', n, K) of the inputs ``x`` (B', n, C, H, W) of the members at positions
        ``which`` (all: None), as float32."""
        params, buffers = self.params, self.buffers
        if which is not None:
            params = {k: v.detach()[which] for k, v in params.items()}
            buffers = {k: v[which] for k, v in buffers.items()}
        b, n = x.shape[:2]
        with self._autocast():
            if self.fused is not None:
                self.fused.train(train)
                fused = x.transpose(0, 1).reshape(n, b * x.shape[2], *x.shape[3:])
                if self.channels_last:
                    fused = fused.contiguous(memory_format=torch.channels_last)
                out = (self.fused(fused) if which is None
                       else functional_call(self.fused, (params, buffers), (fused,)))
                logits = out.view(n, b, -1).transpose(0, 1)
            else:
                self.template.train(train)

                def one(p: dict[str, Tensor], s: dict[str, Tensor], xb: Tensor) -> Tensor:
                    return functional_call(self.template, (p, s), (xb,))

                logits = vmap(one)(params, buffers, x)
        return logits.float()

    # -- one epoch

    def _orders(self) -> list[Tensor]:
        """Each member's minibatches of the epoch, as (B, size) index tensors."""
        n, size = self.splits["y_train"].shape[1], self.members[0].config.optim.batch_size
        if size is None or size >= n:  # full batch: no draw from the batches stream
            return [torch.arange(n, device=self.device).expand(len(self.members), n)]
        orders = torch.stack([torch.randperm(n, generator=m.generators["batches"])
                              for m in self.members]).to(self.device)
        return list(orders.split(size, dim=1))

    def _augment(self, x: Tensor) -> Tensor:
        """Each member's random crop and flip of its uint8 batch (B, n, C, H, W), drawn from its
        augment stream as the reference trainer draws them; the identity where it does not augment."""
        n = x.shape[1]
        plans = []
        for member, augments in zip(self.members, self.augments, strict=True):
            if augments:
                plans.append(sample_crop_flip(n, padding=self.padding, flip=self.flip,
                                              generator=member.generators["augment"]))
            else:  # a crop at the padding's offset is the image itself
                offset = torch.full((n,), self.padding)
                plans.append(CropFlipPlan(offset, offset, torch.zeros(n, dtype=torch.bool)))
        plan = CropFlipPlan(*(torch.cat([getattr(p, f) for p in plans]).to(self.device)
                              for f in ("top", "left", "flip")))
        return apply_crop_flip(x.flatten(0, 1), plan, padding=self.padding).view_as(x)

    def _mix(self, x: Tensor, targets: Tensor, mixing: list[bool]) -> tuple[Tensor, Tensor]:
        """Each mixing member's Mixup of its batch, drawn from its mix stream as the reference trainer
        draws it; λ = 1 with the identity partner (exactly the clean batch) where it does not."""
        b, n = x.shape[:2]
        lam, partner, g = mix_plans(self.members, mixing, n, self.device)
        rows = torch.arange(b, device=self.device)[:, None]
        x = torch.lerp(x[rows, partner], x, lam.view(b, n, 1, 1, 1))
        targets = torch.lerp(targets[rows, partner], targets, g.view(b, n, 1))
        return x, targets

    def _normalise(self, x: Tensor, u: Tensor) -> Tensor:
        """uint8 images (B, n, C, H, W) of the data sets ``u`` (B,) as the model reads them."""
        return torch.addcmul(self.splits["shift"][u], x.to(torch.float32), self.splits["scale"][u])

    def step(self, max_batches: int | None = None) -> Tensor:
        """One epoch of every member; returns each member's mean train loss (B,).
        ``max_batches`` stops after that many minibatches (the memory probe's single step)."""
        members = self.members
        mixing = [mixup_active(m.config, m.epoch) for m in members]
        settings = torch.tensor(
            [[-learning_rate(m.config, m.epoch), m.config.optim.momentum,
              m.config.optim.weight_decay] for m in members], device=self.device)
        neg_lr, momentum, decay = settings.unbind(1)
        has_momentum = any(m.config.optim.momentum for m in members)
        has_decay = any(m.config.optim.weight_decay for m in members)
        u = self.data_index
        batches = self._orders()[:max_batches]
        total = torch.zeros(len(members), device=self.device)
        for index in batches:
            x = self.splits["x_train"][u[:, None], index]
            if any(self.augments):
                x = self._augment(x)
            x = self._normalise(x, u)
            targets = self.splits["targets"][u[:, None], index]
            if any(mixing):
                x, targets = self._mix(x, targets, mixing)
            logits = self._logits(x, train=True)
            loss = -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean(-1)  # (B,)
            loss.sum().backward()  # member b's loss reaches member b's weights only
            self._sgd(neg_lr, momentum if has_momentum else None, decay if has_decay else None)
            total += loss.detach()
        for member in members:
            member.epoch += 1
        self.last_mixing = mixing
        return total / len(batches)

    @torch.no_grad()
    def _sgd(self, neg_lr: Tensor, momentum: Tensor | None, decay: Tensor | None) -> None:
        """torch.optim.SGD's update (dampening 0, no Nesterov) with per-member settings.

        Where every member is in the same momentum state (all with a buffer, or none yet) the
        update takes no per-member selection."""
        uses = [m.config.optim.momentum != 0 for m in self.members]
        first = [not has for has in self.has_buf]
        select_first = select_uses = None
        if momentum is not None and any(first) and not all(first):
            select_first = torch.tensor(first, device=self.device)
        if momentum is not None and not all(uses):
            select_uses = torch.tensor(uses, device=self.device)
        for name, param in self.params.items():
            grad = param.grad
            if grad is None:  # SGD skips a parameter without a gradient
                continue
            param.grad = None
            if decay is not None:
                grad = grad.addcmul_(param, _per_member(decay, param))
            if momentum is not None:
                mom = _per_member(momentum, param)
                if all(first):
                    buf = grad
                elif select_first is None:
                    buf = self.momentum[name].mul_(mom).add_(grad)
                else:
                    buf = torch.where(_per_member(select_first, param), grad,
                                      torch.addcmul(grad, self.momentum[name], mom))
                self.momentum[name] = buf
                grad = buf if select_uses is None else torch.where(
                    _per_member(select_uses, param), buf, grad)
            param.addcmul_(grad, _per_member(neg_lr, param))
        if momentum is not None:
            self.has_buf = [has or use for has, use in zip(self.has_buf, uses, strict=True)]

    # -- evaluation

    @torch.no_grad()
    def evaluate(self, which: Sequence[int]) -> list[Metrics]:
        """The reference trainer's ``evaluate`` metrics for the members at positions ``which``."""
        which = list(which)
        if not which:
            return []
        index = torch.tensor(which, device=self.device)
        subset = None if which == list(range(len(self.members))) else index
        u = self.data_index[index]
        columns: dict[str, Tensor] = {}
        features: dict[str, Tensor] = {}
        for split in ("train", "val", "test"):
            with self._capture_features() as captured:
                logits = self._eval_logits(self.splits[f"x_{split}"], u, subset)
            if captured:
                features[split] = torch.cat(captured, dim=1)
            noise = self.splits.get(f"noise_{split}")
            columns |= split_columns(split, logits, self.splits[f"y_{split}"][u],
                                     self.splits[f"rare_{split}"][u],
                                     None if noise is None else noise[u])
        for name, (x, y) in self.probes.items():
            columns[f"probe/{name}"] = (accuracy(self._eval_logits(x, u, subset), y[u])
                                        if x.shape[1] else torch.full((len(u),), math.nan))
        if "train" in features and bool(self.splits["rare_train"].any()):
            columns["probe/ridge_rare"] = ridge_transfer(
                features["train"], self.splits["y_train"][u], self.splits["rare_train"][u],
                features["test"], self.splits["y_test"][u], self.splits["rare_test"][u],
                self.num_classes)
        return rows(columns)

    @contextlib.contextmanager
    def _capture_features(self) -> Any:
        """Collects the penultimate features (B', n, d) of every forward in the block: the input
        of the model's last Linear layer, in the grouped layout (none in ``vmap``)."""
        captured: list[Tensor] = []
        head = self._head()
        if head is None:
            yield captured
            return

        inputs = int(head.weight.shape[2])

        def hook(module: nn.Module, args: tuple[Tensor, ...]) -> None:
            x = args[0].detach().float()
            b = x.shape[1] // inputs
            captured.append(x.view(x.shape[0], b, -1).transpose(0, 1))

        handle = head.register_forward_pre_hook(hook)
        try:
            yield captured
        finally:
            handle.remove()

    def _head(self) -> _GroupedLinear | None:
        if self.fused is None:
            return None
        linears = [m for m in self.fused.modules() if isinstance(m, _GroupedLinear)]
        return linears[-1] if linears else None

    def _eval_logits(self, x: Tensor, u: Tensor, which: Tensor | None) -> Tensor:
        """Logits (B', N, K) of the members ``which`` (all: None) on the stored images ``x``
        (U, N, C, H, W) of their data sets ``u``, un-augmented, about EVAL_CHUNK images per
        forward (the reference trainer's chunk)."""
        chunk = max(1, math.ceil(EVAL_CHUNK / len(u)))
        parts = []
        for start in range(0, x.shape[1], chunk):
            images = self._normalise(x[u, start:start + chunk], u)
            parts.append(self._logits(images, train=False, which=which))
        return torch.cat(parts, dim=1)

    # -- membership and checkpoints

    def keep(self, keep: Sequence[bool]) -> None:
        """Drops the members whose entry is False; the others go on untouched."""
        if len(keep) != len(self.members):
            raise ValueError(f"keep has {len(keep)} entries for {len(self.members)} members")
        kept = [i for i, k in enumerate(keep) if k]
        index = torch.tensor(kept, dtype=torch.long, device=self.device)
        self.members = [self.members[i] for i in kept]
        self.augments = [self.augments[i] for i in kept]
        self.params = {k: nn.Parameter(v.detach()[index]) for k, v in self.params.items()}
        self.buffers = {k: v[index] for k, v in self.buffers.items()}
        self.momentum = {k: v[index] for k, v in self.momentum.items()}
        self.has_buf = [self.has_buf[i] for i in kept]
        if self.fused is not None:
            self._bind()
        used, self.data_index = torch.unique(self.data_index[index], return_inverse=True)
        self.splits = {k: v[used] for k, v in self.splits.items()}  # data sets still in use

    def member_state(self, j: int) -> dict[str, Any]:
        """Member ``j``'s weights and BatchNorm buffers (named as the model's ``state_dict``)
        and momentum buffers (None before its first momentum step): what resumes it exactly."""
        stacked = {**self.params, **self.buffers}
        has_buf = self.has_buf[j]
        return {
            "model": {name: stacked[name][j].detach().cpu().clone() for name in self.state_names},
            "momentum": {name: self.momentum[name][j].cpu().clone() if has_buf else None
                         for name in self.params},
        }

    @torch.no_grad()
    def load_member_state(self, j: int, state: dict[str, Any]) -> None:
        """Restores member ``j`` from :meth:`member_state` (its generators, epoch and history
        live on its :class:`~mixup_core.training.member.Member`, restored by the pack)."""
        stacked = {**self.params, **self.buffers}
        if set(state.get("model", {})) != set(stacked):
            raise ValueError("checkpoint holds no weights of this architecture (another model, "
                             "or a member of the closed-form engine)")
        for name, value in state["model"].items():
            stacked[name][j].copy_(value)
        saved = state["momentum"]
        has_buf = any(v is not None for v in saved.values())
        for name, value in saved.items():
            if value is not None:
                self.momentum[name][j].copy_(value)
        self.has_buf[j] = has_buf


def measure_member_bytes(config: TrialConfig, device: torch.device | str) -> tuple[int, int]:
    """(fixed, per member) peak CUDA bytes of ``config``'s image trials in one group: the
    peaks of one training step of a group of one and of two members (other seeds: their own
    data sets) on ``device``; a pack of B members needs about fixed + B x per member."""
    from mixup_core.schemes import make_label_scheme
    from mixup_core.training.member import Member

    device = torch.device(device)
    if device.type != "cuda":
        raise ValueError("measure_member_bytes measures CUDA memory; give a CUDA device")
    peaks = []
    for size in (1, 2):
        configs = [config.replace(seed=config.seed + i) for i in range(size)]
        members = [Member(i, c, make_label_scheme(c.mixup.label_scheme, c.mixup.label_param),
                          {"mix": make_generator(c.seed, Stream.MIX)})
                   for i, c in enumerate(configs)]
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        group = AutogradGroup(members, device)
        group.step(max_batches=1)
        group.evaluate([0])
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - start)
        del group, members
    per_member = max(1, peaks[1] - peaks[0])
    return max(0, peaks[0] - per_member), per_member


__all__ = ["LAYOUTS", "AutogradGroup", "autograd_packable", "data_key", "group_key",
           "measure_member_bytes"]
