"""The autograd engine: B image-model members as one computation, against the unpacked Trainer.

Tolerance. A float32 member draws what the Trainer draws (data, initial weights, minibatch
order, crops, Mixup plans); its inputs, its forward and its running statistics are the
Trainer's bit for bit on the same weights. The backward's sums (inside the grouped
convolutions) and the optimiser's roundings (torch.optim.SGD's fused multiply-adds) differ by
about 1e-7 relative per step. On these fixtures every metric agrees within 1.1e-7 relative over
the first two epochs (measured), so the tests allow 1e-5 (small_cnn) and 1e-4 (preact_resnet18)
and require accuracies, counts and flags to be equal.

Some trainings amplify any rounding difference, whoever makes it: ``preact_resnet18`` at 4
channels on the 8×8 digits with lr 0.02 and weight decay 5e-4 moves its weights by 1.6e-3 within
one epoch when its initial weights move by 1e-7 relative, in the unpacked Trainer alone. Its
fixtures here use lr <= 0.01, where one ULP of every initial weight stays one ULP. Against
themselves packs are exact: a group resumed from member states ends bit for bit where an
uninterrupted one does, and a member that diverges changes no bit of the others.
"""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
import torch
from torch import nn

from mixup_core import TrialConfig
from mixup_core.catalog import VIEW_METRIC_NAMES
from mixup_core.data import build_data
from mixup_core.schemes import LABEL_SCHEMES, make_label_scheme
from mixup_core.seeding import Stream, make_generator
from mixup_core.training import Metrics
from mixup_core.training import autograd as engine
from mixup_core.training.autograd import AutogradGroup, autograd_packable, data_key, group_key
from mixup_core.training.member import Member
from tests.core.reference_trainer import Trainer

DIGITS = {"data.name": "digits", "model.name": "small_cnn", "model.channels": 8,
          "optim.batch_size": 128, "optim.lr": 0.1, "optim.epochs": 2, "log_every": 1,
          "device": "cpu"}
TOLERANCE = {"small_cnn": 1e-5, "preact_resnet18": 1e-4}
EXACT = ("epoch", "train/acc", "val/acc", "val/acc_common", "val/acc_rare", "test/acc",
         "test/acc_common", "test/acc_rare", "mixup/active")
CPU = torch.device("cpu")


def config(**updates: Any) -> TrialConfig:
    return TrialConfig().replace(**{**DIGITS, **updates})


def resnet(**updates: Any) -> TrialConfig:
    return config(**{"model.name": "preact_resnet18", "model.channels": 4, "optim.lr": 0.01,
                     **updates})


def members(configs: list[TrialConfig]) -> list[Member]:
    return [Member(i, c, make_label_scheme(c.mixup.label_scheme, c.mixup.label_param),
                   {"mix": make_generator(c.seed, Stream.MIX)}) for i, c in enumerate(configs)]


def advance(group: AutogradGroup, histories: dict[int, list[Metrics]]) -> None:
    """One epoch of ``group`` logged as mixup_core.training.Pack logs it (every member logs at
    every epoch here), rows appended to ``histories`` by member index; members that reached
    their budget leave."""
    loss = group.step().tolist()
    metrics = group.evaluate(range(len(group.members)))
    for member, value, row, mixing in zip(group.members, loss, metrics, group.last_mixing,
                                          strict=True):
        histories.setdefault(member.index, []).append(
            {"epoch": float(member.epoch), "train/loss": value, **row,
             "mixup/active": float(mixing)})
    group.keep([m.epoch < m.budget for m in group.members])


def train(configs: list[TrialConfig], epochs: int = 2, **kwargs: Any) -> dict[int, list[Metrics]]:
    group = AutogradGroup(members(configs), CPU, **kwargs)
    histories: dict[int, list[Metrics]] = {}
    for _ in range(epochs):
        if group.members:
            advance(group, histories)
    return histories


def assert_close_histories(packed: list[Metrics], unpacked: list[Metrics], tol: float) -> None:
    assert len(packed) == len(unpacked)
    for p, u in zip(packed, unpacked, strict=True):
        # the reference trainer predates the view metrics (probes, rare errors on the noise
        # class): the engine reports every metric it reports, and those besides
        assert [k for k in p if k in u] == list(u)
        assert set(p) - set(u) <= set(VIEW_METRIC_NAMES), set(p) - set(u)
        for key in u:
            if math.isnan(u[key]):
                assert math.isnan(p[key]), key
            elif key in EXACT:
                assert p[key] == u[key], (key, p[key], u[key])
            else:
                assert abs(p[key] - u[key]) <= tol * max(1.0, abs(u[key])), (key, p[key], u[key])


def unpacked(config: TrialConfig, epochs: int = 2) -> list[Metrics]:
    """The Trainer's history over the first ``epochs`` epochs (log_every is 1)."""
    trainer = Trainer(config)
    while trainer.epoch < epochs and not trainer.done:
        trainer.advance()
    return trainer.history


def assert_identical(a: list[Metrics], b: list[Metrics]) -> None:
    """Equal histories, bit for bit (NaN equal to NaN)."""
    assert [{k: repr(v) for k, v in row.items()} for row in a] == \
        [{k: repr(v) for k, v in row.items()} for row in b]


def check_against_unpacked(configs: list[TrialConfig], epochs: int = 2, **kwargs: Any) -> None:
    histories = train(configs, epochs, **kwargs)
    tol = TOLERANCE[configs[0].model.name]
    for i, c in enumerate(configs):
        assert_close_histories(histories[i], unpacked(c, epochs), tol)


# -- equivalence with the unpacked Trainer


def test_every_label_scheme_and_both_stop_modes_match_the_unpacked_trainer() -> None:
    configs = [config(seed=i % 3, **{"mixup.label_scheme": name})
               for i, name in enumerate(LABEL_SCHEMES.names())]
    configs += [config(**{"mixup.stop_epoch": 1}),
                config(seed=1, **{"mixup.stop_epoch": 1, "mixup.stop_mode": "end_training",
                                  "optim.epochs": 3}),
                config(**{"mixup.alpha": 0.0}),
                config(seed=2, **{"mixup.fold": True, "mixup.alpha": 0.4,
                                  "mixup.label_scheme": "power", "mixup.label_param": 3.0})]
    check_against_unpacked(configs)


def test_momentum_weight_decay_schedules_augmentation_and_mixed_learning_rates_match() -> None:
    check_against_unpacked([
        config(**{"optim.momentum": 0.9, "optim.weight_decay": 5e-4}),
        config(seed=1, **{"optim.lr": 0.03, "optim.schedule": "cosine", "data.augment": True}),
        config(seed=2, **{"optim.lr": 0.2, "optim.momentum": 0.5, "optim.schedule": "multistep",
                          "optim.batch_size": 128}),
        config(**{"optim.weight_decay": 1e-2, "data.augment": True,
                  "mixup.label_scheme": "independent"}),
    ])


def test_preact_resnet18_members_match_the_unpacked_trainer() -> None:
    check_against_unpacked([
        resnet(**{"optim.lr": 0.005, "optim.momentum": 0.9, "optim.weight_decay": 5e-4}),
        resnet(seed=1, **{"mixup.label_scheme": "independent", "data.augment": True}),
        resnet(seed=2, **{"mixup.stop_epoch": 1, "mixup.label_scheme": "dominant"}),
        resnet(**{"mixup.stop_epoch": 1, "mixup.stop_mode": "end_training", "optim.epochs": 3}),
    ])


def test_the_vmap_layout_matches_the_unpacked_trainer_too() -> None:
    check_against_unpacked([config(**{"optim.momentum": 0.9}), config(seed=1)], epochs=1,
                           layout="vmap")


def test_rare_subclass_members_report_rare_and_common_accuracies() -> None:
    configs = [config(**{"data.view": "rare_subclass", "data.rho": 0.3}),
               config(seed=1, **{"data.view": "rare_subclass", "data.rho": 0.3})]
    check_against_unpacked(configs, epochs=1)


# -- members come and go


def test_a_dropped_member_leaves_the_others_as_their_unpacked_runs() -> None:
    configs = [config(), config(seed=1, **{"optim.momentum": 0.9}), config(seed=2)]
    group = AutogradGroup(members(configs), CPU)
    histories: dict[int, list[Metrics]] = {}
    advance(group, histories)
    group.keep([True, False, True])  # an ASHA cut after one epoch
    assert_identical([group.evaluate([1])[0]], [group.evaluate([0, 1])[1]])  # one or all
    advance(group, histories)
    assert len(histories[1]) == 1 and len(histories[0]) == len(histories[2]) == 2
    for i in (0, 2):
        assert_close_histories(histories[i], unpacked(configs[i]), TOLERANCE["small_cnn"])


def test_a_diverging_member_changes_no_bit_of_the_others() -> None:
    good = [config(), config(seed=1, **{"mixup.label_scheme": "independent"})]
    wild = config(seed=2, **{"optim.lr": 1000.0, "optim.weight_decay": 1000.0})
    tame = config(seed=2)
    diverged = train([good[0], wild, good[1]])
    assert math.isnan(diverged[1][-1]["train/loss"])
    reference = train([good[0], tame, good[1]])
    assert_identical(diverged[0], reference[0])
    assert_identical(diverged[2], reference[2])


def test_a_group_resumed_from_member_states_ends_bit_for_bit_as_an_uninterrupted_one() -> None:
    configs = [config(**{"optim.momentum": 0.9, "optim.weight_decay": 5e-4, "optim.epochs": 3}),
               config(seed=1, **{"data.augment": True, "mixup.label_scheme": "independent",
                                 "optim.epochs": 3}),
               config(seed=2, **{"optim.momentum": 0.5, "optim.epochs": 3})]
    whole = train(configs, epochs=3)

    first = AutogradGroup(members(configs), CPU)
    histories: dict[int, list[Metrics]] = {}
    for _ in range(2):
        advance(first, histories)
    assert list(first.member_state(0)["model"]) == list(Trainer(configs[0]).model.state_dict())
    saved = {"states": [first.member_state(j) for j in range(len(configs))],
             "generators": [{k: g.get_state() for k, g in m.generators.items()}
                            for m in first.members]}
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    second = AutogradGroup(members(configs), CPU)
    for j, member in enumerate(second.members):
        second.load_member_state(j, loaded["states"][j])
        member.epoch = 2
        for name, g in member.generators.items():
            g.set_state(loaded["generators"][j][name])
    advance(second, histories)
    for i in range(len(configs)):
        assert_identical(histories[i], whole[i])


# -- what packs together


def test_only_image_models_on_image_data_are_autograd_members() -> None:
    assert autograd_packable(config()) is None
    assert autograd_packable(resnet()) is None
    reason = autograd_packable(TrialConfig())
    assert reason is not None and "closed-form engine" in reason


def test_members_of_a_group_share_architecture_batch_size_and_data_shapes() -> None:
    assert group_key(config()) == group_key(config(seed=3, **{"optim.lr": 0.5}))
    assert group_key(config()) != group_key(config(**{"optim.batch_size": 32}))
    assert group_key(config()) != group_key(config(**{"model.channels": 4}))
    with pytest.raises(ValueError, match="differs from member"):
        AutogradGroup(members([config(), config(**{"model.channels": 4})]), CPU)
    # a max_train subset is stratified by class: every seed's splits have one shape
    capped = [config(seed=s, **{"data.max_train": 300}) for s in (0, 1)]
    shapes = [data_key(build_data(c.data, c.seed)) for c in capped]
    assert shapes[0] == shapes[1]
    AutogradGroup(members(capped), CPU)
    other = [config(**{"data.max_train": 300}), config(seed=1, **{"data.max_train": 200})]
    with pytest.raises(ValueError, match="separate groups"):
        AutogradGroup(members(other), CPU)


class _ChannelMixer(nn.Module):
    """A model whose forward subtracts the mean over channels, which the grouped layout (one
    channel axis for all members) would take over every member's channels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.linear = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        h = h - h.mean(dim=1, keepdim=True)
        return self.linear(torch.relu(h).mean(dim=(2, 3)))


def test_a_model_that_mixes_channels_is_refused_by_the_grouped_layout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "build_model", lambda *args: _ChannelMixer())
    with pytest.raises(ValueError, match="mixes channels"):
        AutogradGroup(members([config(), config(seed=1)]), CPU, layout="grouped")
    AutogradGroup(members([config(), config(seed=1)]), CPU, layout="vmap")  # vmap runs it


# -- both engines in one Pack: the one loop over members


def test_a_pack_holds_both_engines_and_each_member_follows_its_unpacked_run() -> None:
    from mixup_core.training import Pack

    patch = TrialConfig().replace(**{"data.dim": 60, "data.n_train": 24, "data.n_test": 30,
                                     "data.n_val": 30, "optim.epochs": 2, "log_every": 1,
                                     "device": "cpu"})
    images = [config(seed=0), config(seed=1, **{"mixup.alpha": 0.0, "optim.lr": 0.05})]
    pack = Pack([patch, *images], device="cpu")
    assert sorted(type(g).__name__ for g in pack.groups) == ["AutogradGroup", "ClosedFormGroup"]
    results = pack.run()
    for c, result in zip(images, results[1:], strict=True):
        assert_close_histories(result.history, unpacked(c), TOLERANCE["small_cnn"])
    alone = Trainer(patch).run()  # the closed-form engine: tests/core/test_packed.py's tolerance
    assert [r["epoch"] for r in results[0].history] == [r["epoch"] for r in alone.history]
    assert results[0].final["test/acc"] == pytest.approx(alone.final["test/acc"], abs=1e-6)
    state = pack.state_dict()  # the pack's state file holds both kinds of member
    resumed = Pack([patch, *images], device="cpu")
    resumed.load_state_dict(state)
    assert [m.status for m in resumed.members] == ["done"] * 3
