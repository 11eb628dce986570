"""The packed trainer: B patch-CNN members as one computation, against the unpacked Trainer.

Tolerance. A float32 member runs the unpacked trainer's arithmetic on the same draws (data,
initial filters, mixing plans); only the order of floating-point sums differs: in the direct
form inside larger GEMMs ((B·K·m × d) instead of B small ones), in the Gram form also by summing
the patches' products X Xᵀ before W's (Z = s·X W₀ᵀ + G C). That is a relative difference of
~1e-7 per step; on the default task over 200 epochs the metrics agree to 1.3e-6 (direct) and
5.7e-6 (Gram) at worst, so the tests allow 1e-5 on every real-valued metric and exact equality
of accuracies, counts and flags (an accuracy could only move if a test point sat within 1e-5 of
the decision boundary). The comparisons of whole histories run in both forms.
"""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
import torch

from mixup_core import TrialConfig
from mixup_core.schemes import LABEL_SCHEMES
from mixup_core.training import Pack, TrainingDiverged, train_packed
from tests.core.reference_trainer import Trainer

SMALL = {"data.dim": 120, "data.n_train": 40, "data.n_val": 60, "data.n_test": 60,
         "optim.epochs": 40, "log_every": 10, "model.width": 4,
         "precision": "float32"}  # auto is bfloat16 on CPUs with AVX512-BF16
TOLERANCE = 1e-5
EXACT = ("epoch", "train/acc", "val/acc", "val/acc_common", "val/acc_rare", "test/acc",
         "test/acc_common", "test/acc_rare", "mixup/active")


def config(**updates: Any) -> TrialConfig:
    return TrialConfig().replace(**{**SMALL, **updates})


def assert_same_histories(packed: list[dict[str, float]], unpacked: list[dict[str, float]]) -> None:
    assert len(packed) == len(unpacked)
    for p, u in zip(packed, unpacked, strict=True):
        assert p.keys() == u.keys()
        for key in p:
            if key in EXACT or math.isnan(u[key]):
                assert p[key] == u[key] or (math.isnan(p[key]) and math.isnan(u[key])), key
            else:
                assert abs(p[key] - u[key]) <= TOLERANCE * max(1.0, abs(u[key])), (key, p[key], u[key])


#: Both forms of the packed step (mixup_core.training.closed_form.ClosedFormGroup): W itself,
#: or W = s·W₀ + Cᵀ X.
FORMS = pytest.mark.parametrize("gram", [True, False], ids=["gram", "direct"])


def check_against_unpacked(configs: list[TrialConfig], gram: bool | None = None) -> None:
    results = train_packed(configs, gram=gram)
    for c, result in zip(configs, results, strict=True):
        assert_same_histories(result.history, Trainer(c).run().history)


@FORMS
def test_every_label_scheme_and_both_stop_modes_match_the_unpacked_trainer(gram: bool) -> None:
    configs = [config(seed=s, **{"mixup.label_scheme": name}) for name in LABEL_SCHEMES.names()
               for s in (0, 1)]
    configs += [config(**{"mixup.stop_epoch": 15}),
                config(**{"mixup.stop_epoch": 15, "mixup.stop_mode": "end_training"}),
                config(**{"mixup.alpha": 0.0}), config(**{"mixup.fold": True, "mixup.alpha": 0.4})]
    check_against_unpacked(configs, gram)


@FORMS
def test_per_member_optimiser_settings_budgets_and_log_intervals_match(gram: bool) -> None:
    check_against_unpacked([
        config(**{"optim.momentum": 0.9, "optim.lr": 0.1}),
        config(**{"optim.weight_decay": 0.01, "optim.schedule": "cosine"}),
        config(**{"optim.schedule": "multistep", "optim.epochs": 24, "log_every": 7}),
        config(**{"model.power": 1, "model.width": 3}),
        config(**{"model.init_std": 0.05, "model.power": 2}),
    ], gram)


@FORMS
def test_three_classes_and_mixed_data_configs_in_one_pack_match(gram: bool) -> None:
    check_against_unpacked([
        config(**{"data.num_classes": 3}), config(**{"data.num_classes": 3, "seed": 4}),
        config(**{"data.rho": 0.3}), config(**{"data.dim": 80, "data.n_train": 30}),
        config(**{"data.noise_on_feature_patches": True, "mixup.label_scheme": "power"}),
    ], gram)


def test_members_with_one_data_set_share_one_group_and_one_gemm() -> None:
    pack = Pack([config(**{"mixup.alpha": a}) for a in (0.0, 0.5, 1.0)]
                + [config(seed=1), config(**{"model.width": 6})])
    sizes = sorted(len(g.members) for g in pack.groups)
    assert sizes == [1, 1, 3]  # seed 1 has its own data, width 6 its own filter shape


def test_a_diverging_member_errors_alone_and_the_others_are_untouched() -> None:
    good = [config(), config(**{"mixup.label_scheme": "independent"})]
    bad = config(**{"optim.lr": 1e3, "model.init_std": 5.0})
    with pytest.raises(TrainingDiverged) as unpacked:
        Trainer(bad).run()
    pack = Pack([good[0], bad, good[1]])
    results = pack.run()
    assert pack.members[1].status == "diverged"
    assert pack.members[1].error == str(unpacked.value)
    for c, result in zip(good, (results[0], results[2]), strict=True):
        assert_same_histories(result.history, Trainer(c).run().history)


def test_a_stopped_member_leaves_and_the_others_go_on_unchanged() -> None:
    configs = [config(), config(**{"mixup.alpha": 0.0}), config(seed=2)]
    pack = Pack(configs)
    while pack.members[0].epoch < 20:
        pack.advance()
    pack.stop(1)
    results = pack.run()
    assert pack.members[1].status == "stopped" and results[1].epochs_trained == 20
    for i in (0, 2):
        assert_same_histories(results[i].history, Trainer(configs[i]).run().history)


@FORMS
def test_a_pack_resumed_from_its_checkpoint_ends_bit_for_bit_as_an_uninterrupted_one(
        gram: bool) -> None:
    configs = [config(**{"optim.momentum": 0.5}), config(**{"mixup.label_scheme": "power"}),
               config(seed=3, **{"optim.epochs": 30}),
               config(**{"optim.momentum": 0.9, "optim.weight_decay": 0.05})]
    whole = Pack(configs, gram=gram).run()
    first = Pack(configs, gram=gram)
    for _ in range(17):
        first.advance()
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    second = Pack(configs, gram=gram)
    second.load_state_dict(torch.load(buffer, weights_only=True))
    for a, b in zip(second.run(), whole, strict=True):
        assert a.history == b.history


def test_the_form_follows_the_shape_and_a_checkpoint_names_its_form() -> None:
    assert Pack([TrialConfig()]).groups[0].gram  # n·P = 600 <= d = 2000
    assert not Pack([config(**{"data.dim": 80, "data.n_train": 30})]).groups[0].gram  # 90 > 80
    state = Pack([config()], gram=True).state_dict()
    with pytest.raises(ValueError, match="gram form of a member"):
        Pack([config()], gram=False).load_state_dict(state)


def test_the_gram_form_holds_the_filters_the_unpacked_trainer_learns() -> None:
    """W = s·W₀ + Cᵀ X, rebuilt from the Gram form's state, is the Trainer's weight, with
    weight decay (s < 1) and momentum (a buffer of s and of C) too."""
    configs = [config(**{"optim.momentum": 0.9, "optim.weight_decay": 0.05, "optim.lr": 0.2}),
               config(**{"mixup.label_scheme": "independent"}), config(seed=1)]
    gram, direct = Pack(configs, gram=True), Pack(configs, gram=False)
    trainers = [Trainer(c) for c in configs]
    for _ in range(25):
        gram.advance()
        direct.advance()
        for trainer in trainers:
            trainer.train_epoch()
    for pack in (gram, direct):
        for group in pack.groups:
            for j, member in enumerate(group.members):
                expected = trainers[member.index].model.weight.detach().view_as(
                    group.weight([j])[0])
                torch.testing.assert_close(group.weight([j])[0], expected, rtol=1e-4, atol=1e-5)
    assert float(gram.groups[0].scale[0]) < 1.0  # weight decay shrank W₀'s share


def test_minibatch_members_each_on_their_own_batches_match_the_unpacked_trainer() -> None:
    """Minibatch SGD of the patch CNN packs too (direct form, one batched GEMM over members):
    two batch sizes (two groups, the last batch short), every label scheme, momentum and
    weight decay, mixed learning rates, both stop modes, two seeds."""
    schemes = sorted(LABEL_SCHEMES)
    configs = []
    for i, scheme in enumerate(schemes):
        configs.append(config(**{
            "optim.batch_size": 16 if i % 2 else 12, "optim.momentum": 0.9 * (i % 2),
            "optim.weight_decay": 1e-3 * (i % 3), "optim.lr": (0.02, 0.05, 0.1)[i % 3],
            "mixup.label_scheme": scheme, "mixup.stop_epoch": 20 if i % 2 else None,
            "mixup.stop_mode": "end_training" if i % 4 == 1 else "switch_to_erm",
            "optim.epochs": 30, "seed": i % 2}))
    check_against_unpacked(configs)


def test_bfloat16_members_train_and_stay_close_to_float32() -> None:
    base = config(**{"optim.epochs": 60, "log_every": 30})
    low = config(**{"optim.epochs": 60, "log_every": 30, "precision": "bfloat16"})
    f32, b16 = train_packed([base, low])
    for key in ("test/acc", "val/acc"):
        assert abs(f32.final[key] - b16.final[key]) <= 0.1
    assert f32.final["train/loss"] != b16.final["train/loss"]  # it really ran in bfloat16
    # the unpacked trainer runs bfloat16 GEMMs too; the GEMM outputs are rounded to bfloat16,
    # so a different summation order can move a value by one bfloat16 step (2^-8 relative)
    alone = Trainer(low).run()
    assert alone.final["train/loss"] != f32.final["train/loss"]
    for key in ("test/acc", "val/acc", "train/acc"):
        assert abs(alone.final[key] - b16.final[key]) <= 0.05


def test_auto_precision_is_bfloat16_exactly_where_bfloat16_is_native(monkeypatch) -> None:
    from mixup_core import precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset({"avx512f", "avx512bw"}))
    assert precision.patch_cnn_gemm_dtype("auto", cpu) == torch.float32
    assert Trainer(config(precision="auto")).model.gemm_dtype == torch.float32
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert precision.patch_cnn_gemm_dtype("auto", cpu) == torch.bfloat16
    assert Trainer(config(precision="auto")).model.gemm_dtype == torch.bfloat16
    assert Pack([config(precision="auto")]).groups[0].dtype == torch.bfloat16
    assert precision.patch_cnn_gemm_dtype("float32", cpu) == torch.float32
    assert precision.patch_cnn_gemm_dtype("bfloat16", cpu) == torch.bfloat16
