"""Training image models: they learn, resume exactly, and run every image model and data set."""

import io
import math

import pytest
import torch

from mixup_core import METRIC_NAMES, Pack, TrialConfig, train
from mixup_core.data.base import ImageSpec, TaskData
from mixup_core.models import MODEL_INPUTS, MODELS, PreActResNet18, build_model
from tests.image_fixtures import write_cifar10_fixture

DIGITS = {"data.name": "digits", "model.name": "small_cnn", "optim.batch_size": 64,
          "optim.lr": 0.1, "optim.momentum": 0.9, "optim.weight_decay": 5e-4, "log_every": 2}
IMAGE_MODELS = [name for name, kind in MODEL_INPUTS.items() if kind == "images"]


def digits(**updates) -> TrialConfig:
    return TrialConfig().replace(**{**DIGITS, **updates})


def test_a_small_cnn_learns_the_digits_in_a_few_epochs():
    result = train(digits(**{"optim.epochs": 4, "model.channels": 16, "mixup.alpha": 0.0}),
                   device="cpu")
    assert result.final["test/acc"] >= 0.8  # chance is 0.1
    assert math.isnan(result.final["test/acc_rare"])  # no view, nothing rare


def test_an_image_trial_resumed_from_a_checkpoint_ends_exactly_as_an_uninterrupted_one():
    config = digits(**{"optim.epochs": 4, "model.channels": 8, "data.augment": True,
                       "data.view": "rare_subclass", "data.rho": 0.2, "mixup.stop_epoch": 3,
                       "mixup.label_scheme": "independent", "optim.schedule": "multistep"})
    uninterrupted = Pack([config], device="cpu")  # a single trial is a pack of one
    uninterrupted.run()

    first = Pack([config], device="cpu")
    while first.members[0].epoch < 2:
        first.advance()
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = Pack([config], device="cpu")
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    resumed.run()

    assert resumed.members[0].history == uninterrupted.members[0].history
    resumed = resumed.members[0]  # type: ignore[assignment]
    assert [h["mixup/active"] for h in resumed.history] == [1.0, 0.0]


def test_the_cifar10_recipe_runs_on_the_fixture_with_rare_subclass_metrics(tmp_path, monkeypatch):
    write_cifar10_fixture(tmp_path)
    monkeypatch.setenv("MIXUP_DATA_ROOT", str(tmp_path))
    config = TrialConfig().replace(**{
        "data.name": "cifar10", "data.view": "rare_subclass", "data.rho": 0.5,
        "data.augment": True, "model.name": "preact_resnet18", "model.channels": 4,
        "optim.batch_size": 32, "optim.lr": 0.1, "optim.momentum": 0.9,
        "optim.weight_decay": 1e-4, "optim.schedule": "multistep", "optim.epochs": 2,
        "log_every": 1,
    })
    result = train(config, device="cpu")
    assert [h["epoch"] for h in result.history] == [1, 2]
    reported = {m for m in METRIC_NAMES if not m.startswith("features/")}
    assert reported <= set(result.final)
    assert all(math.isfinite(result.final[m]) for m in reported)


def images(shape: tuple[int, ...], num_classes: int = 3) -> TaskData:
    n = 4
    x = torch.randint(0, 256, (n, *shape), dtype=torch.uint8)
    y = torch.arange(n) % num_classes
    rare = torch.zeros(n, dtype=torch.bool)
    spec = ImageSpec(mean=(0.5,) * shape[0], std=(0.25,) * shape[0], crop_padding=1, flip=False)
    return TaskData(x, y, rare, x, y, rare, x, y, rare, num_classes=num_classes, image=spec)


@pytest.mark.parametrize("name", IMAGE_MODELS)
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_every_image_model_maps_any_registered_image_size_to_logits(name, shape):
    config = TrialConfig().replace(**{"data.name": "digits", "model.name": name,
                                      "model.channels": 4})
    data = images(shape)
    model = build_model(config.model, data, torch.Generator().manual_seed(0))
    assert model(torch.randn(4, *shape)).shape == (4, 3)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_image_models_draw_their_weights_from_the_init_generator_only(name):
    config = TrialConfig().replace(**{"data.name": "digits", "model.name": name,
                                      "model.channels": 4})
    data = images((3, 32, 32))
    global_state = torch.get_rng_state()
    a, b, c = (build_model(config.model, data, torch.Generator().manual_seed(s)) for s in (1, 1, 2))
    assert torch.equal(torch.get_rng_state(), global_state)
    weights = [torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


def test_preact_resnet18_has_the_reference_size():
    """ResNet18() of facebookresearch/mixup-cifar10 for 10 classes: 11,171,274 weights."""
    config = TrialConfig().replace(**{"data.name": "cifar10", "model.name": "preact_resnet18"})
    model = build_model(config.model, images((3, 32, 32), num_classes=10),
                        torch.Generator().manual_seed(0))
    assert sum(p.numel() for p in model.parameters()) == 11_171_274
    assert type(model) is PreActResNet18  # the name builds the reference network, no stand-in
    # every registered model says what it reads, so the image tests above cover each image model
    assert sorted(MODEL_INPUTS) == MODELS.names()
    assert {"preact_resnet18", "small_cnn"} <= set(IMAGE_MODELS)
