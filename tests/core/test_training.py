import io
import math

import pytest
import torch

from mixup_core import METRIC_NAMES, Pack, TrainingDiverged, TrialConfig, mixup_active, train
from tests.core.reference_trainer import Trainer

SMALL = {"data.dim": 64, "data.n_train": 40, "data.n_test": 40, "optim.epochs": 30,
         "log_every": 10}


def small(**updates) -> TrialConfig:
    return TrialConfig().replace(**{**SMALL, **updates})


def test_metrics_are_reported_every_log_every_epochs_with_every_name():
    seen = []
    result = train(small(), on_log=lambda epoch, metrics: seen.append((epoch, metrics)))
    assert [epoch for epoch, _ in seen] == [10, 20, 30]
    for _, metrics in seen:
        assert set(METRIC_NAMES) <= set(metrics)
        assert all(math.isfinite(v) for v in metrics.values())
    assert result.final == seen[-1][1] and result.epochs_trained == 30


def test_the_last_epoch_is_logged_even_off_the_log_grid():
    result = train(small(**{"optim.epochs": 25}))
    assert [h["epoch"] for h in result.history] == [10, 20, 25]


def test_mixup_activity_is_a_pure_function_of_config_and_epoch():
    config = small(**{"mixup.stop_epoch": 12})
    assert [mixup_active(config, e) for e in (0, 11, 12, 29)] == [True, True, False, False]
    assert not mixup_active(small(**{"mixup.alpha": 0.0}), 0)
    history = train(config).history
    assert [h["mixup/active"] for h in history] == [1.0, 0.0, 0.0]


def test_end_training_mode_stops_the_run_at_the_switch_off_epoch():
    result = train(small(**{"mixup.stop_epoch": 20, "mixup.stop_mode": "end_training"}))
    assert result.epochs_trained == 20


@pytest.mark.parametrize("updates", [{}, {"optim.batch_size": 16, "optim.momentum": 0.9,
                                          "optim.weight_decay": 1e-3, "optim.lr": 0.05,
                                          "mixup.label_scheme": "independent"}])
def test_a_trial_resumed_from_a_checkpoint_ends_exactly_as_an_uninterrupted_one(updates):
    """A single trial is a pack of one: its state file resumes it bit for bit."""
    config = small(**{"mixup.stop_epoch": 15, **updates})
    uninterrupted = Pack([config])
    uninterrupted.run()

    first = Pack([config])
    while first.members[0].epoch < 10:
        first.advance()
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = Pack([config])
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    resumed.run()

    assert resumed.members[0].history == uninterrupted.members[0].history
    assert resumed.members[0].epoch == uninterrupted.members[0].epoch == 30


def test_a_checkpoint_of_another_config_is_refused():
    state = Pack([small()]).state_dict()
    with pytest.raises(ValueError, match="different trial configs"):
        Pack([small(seed=9)]).load_state_dict(state)


def test_a_diverging_run_raises_with_the_epoch():
    with pytest.raises(TrainingDiverged, match=r"train/loss became nan by epoch 10"):
        train(small(**{"optim.lr": 1e3}))


def test_minibatch_sgd_visits_every_example_once_per_epoch():
    """The reference trainer's batches (the oracle the packed engines follow)."""
    trainer = Trainer(small(**{"optim.batch_size": 16}))
    batches = trainer._batches()
    assert [len(b) for b in batches] == [16, 16, 8]
    assert sorted(torch.cat(batches).tolist()) == list(range(40))


def test_mixup_learns_the_rare_feature_that_erm_misses_and_the_switch_off_window_matters():
    """The paper's claims 2 and 3 on the default task (about 10 s on 2 CPU cores)."""
    base = TrialConfig(seed=0, log_every=1000)
    erm = train(base.replace(**{"mixup.alpha": 0.0})).final
    mixup = train(base).final
    late_stop = train(base.replace(**{"mixup.stop_epoch": 600})).final
    early_stop = train(base.replace(**{"mixup.stop_epoch": 100})).final

    assert erm["test/acc_common"] >= 0.9
    assert erm["test/acc_rare"] <= 0.65
    assert erm["features/rare_alignment"] < 0.2
    assert mixup["test/acc_rare"] >= 0.9
    assert mixup["features/rare_alignment"] > 1.0
    assert late_stop["test/acc_rare"] >= 0.9
    assert early_stop["test/acc_rare"] <= 0.65


def test_three_classes_reach_the_regime_with_the_documented_settings():
    """K=3 needs ~100 training points per class and 20 filters per class (README, "K > 2")."""
    base = TrialConfig(seed=0, log_every=1000).replace(
        **{"data.num_classes": 3, "data.n_train": 300, "model.width": 20})
    erm = train(base.replace(**{"mixup.alpha": 0.0})).final
    mixup = train(base).final
    assert erm["test/acc_common"] >= 0.85
    assert erm["test/acc_rare"] <= 0.45  # chance is 1/3; feature noise pulls it lower
    assert mixup["test/acc_common"] >= 0.95 and mixup["test/acc_rare"] >= 0.9
