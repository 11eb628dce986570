import dataclasses
import re
from pathlib import Path

import pytest

from mixup_core import ConfigError, TrialConfig, flat_keys, flatten_nested, from_flat, to_flat

README = Path(__file__).resolve().parents[2] / "README.md"

#: Every key a user can type in a trial config (a spec's ``trial:`` and ``search_space:``).
DOCUMENTED_KEYS = [
    "seed", "log_every", "device", "precision",
    "data.name", "data.num_classes", "data.num_patches", "data.dim", "data.rho", "data.n_train",
    "data.n_test", "data.n_val", "data.feature_norm", "data.feature_noise", "data.noise_std",
    "data.noise_on_feature_patches", "data.test_rare_fraction", "data.root", "data.download",
    "data.view", "data.augment", "data.max_train", "data.max_test", "data.val_fraction",
    "data.overlay", "data.second_view", "data.canvas",
    "model.name", "model.width", "model.power", "model.init_std", "model.channels",
    "optim.lr", "optim.epochs", "optim.batch_size", "optim.momentum", "optim.weight_decay",
    "optim.schedule",
    "mixup.alpha", "mixup.label_scheme", "mixup.label_param", "mixup.fold", "mixup.stop_epoch",
    "mixup.stop_mode",
]


def test_the_documented_keys_are_exactly_the_ones_users_type():
    assert sorted(flat_keys()) == sorted(DOCUMENTED_KEYS)
    # and the README documents each of them, and no key that does not exist
    readme = README.read_text(encoding="utf-8")
    assert [k for k in flat_keys() if not re.search(rf"`{re.escape(k)}[`:]", readme)] == []
    mentioned = {k for k in re.findall(r"`((?:data|model|optim|mixup)\.\w+)", readme)
                 if not k.endswith(".py")}  # sweeps/spec/model.py is a file, not a key
    assert mentioned - set(flat_keys()) == set()


def test_flat_dicts_round_trip_exactly():
    config = TrialConfig().replace(**{
        "seed": 7, "data.rho": 0.25, "mixup.alpha": 0.4, "mixup.label_scheme": "power",
        "mixup.label_param": 3.0, "mixup.stop_epoch": 120, "optim.batch_size": 32,
    })
    flat = to_flat(config)
    assert from_flat(flat) == config
    assert to_flat(from_flat(flat)) == flat
    assert list(flat) == flat_keys()


def test_integral_floats_become_ints_but_fractions_are_refused():
    assert from_flat({"optim.epochs": 30.0}).optim.epochs == 30
    with pytest.raises(ConfigError, match=r"optim\.epochs: expected an integer"):
        from_flat({"optim.epochs": 30.5})


@pytest.mark.parametrize(
    ("flat", "message"),
    [
        ({"mixup.alpha": -0.1}, r"mixup\.alpha: must be >= 0"),
        ({"mixup.alpha": float("nan")}, r"mixup\.alpha: must be >= 0"),
        ({"data.rho": 1.5}, r"data\.rho: must be in \[0\.0, 1\.0\]"),
        ({"data.rho": -0.1}, r"data\.rho: must be in \[0\.0, 1\.0\]"),
        ({"mixup.label_scheme": "magic"}, r"mixup\.label_scheme: unknown label scheme .*same"),
        ({"data.name": "imagenet"}, r"data\.name: unknown data set"),
        ({"model.name": "vit"}, r"model\.name: unknown model"),
        ({"mixup.stop_epoch": -3}, r"mixup\.stop_epoch: must be >= 0"),
        ({"mixup.stop_mode": "later"}, r"mixup\.stop_mode: must be one of"),
        ({"mixup.label_param": 2.0}, r"mixup\.label_param: scheme 'same' takes no parameter"),
        ({"mixup.label_scheme": "constant", "mixup.label_param": 1.5},
         r"mixup\.label_param: must be in \[0\.0, 1\.0\]"),
        ({"optim.lr": 0.0}, r"optim\.lr: must be in \(0\.0, 1000\.0\]"),
        ({"data.num_classes": 1}, r"data\.num_classes: must be in \[2, 1000\]"),
        ({"data.rho": "lots"}, r"data\.rho: expected a number"),
        ({"data.noise_on_feature_patches": 1}, r"data\.noise_on_feature_patches: expected true"),
        ({"seed": True}, r"seed: expected an integer"),
        ({"data.rhoo": 0.1}, r"data\.rhoo: unknown config key \(did you mean 'data\.rho'\?\)"),
        ({"optimizer.lr": 0.1}, r"optimizer\.lr: unknown config key"),
        ({"data": 3}, r"data: unknown config key"),
    ],
)
def test_invalid_values_are_rejected_with_a_message_naming_the_key(flat, message):
    with pytest.raises(ConfigError, match=message):
        from_flat(flat)


def test_configs_are_frozen():
    config = TrialConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 3  # type: ignore[misc]


def test_nested_and_dotted_keys_flatten_to_the_same_dict():
    nested = {"data": {"rho": 0.2}, "mixup.alpha": 0.5, "seed": 1}
    assert flatten_nested(nested) == {"data.rho": 0.2, "mixup.alpha": 0.5, "seed": 1}


def test_end_training_mode_shortens_the_budget_and_switch_mode_does_not():
    base = TrialConfig().replace(**{"optim.epochs": 100, "mixup.stop_epoch": 30})
    assert base.epochs_to_train == 100
    assert base.replace(**{"mixup.stop_mode": "end_training"}).epochs_to_train == 30
    assert base.replace(**{"mixup.stop_mode": "end_training", "mixup.alpha": 0.0}).epochs_to_train == 100
