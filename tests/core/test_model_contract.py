"""Contract suites over every registered model and data set (as over the label schemes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mixup_core.config import TrialConfig
from mixup_core.data import DATASETS, IMAGE_SOURCES, build_data
from mixup_core.mixing import mix_inputs, mix_targets, sample_mix_plan, soft_cross_entropy
from mixup_core.models import MODEL_INPUTS, MODELS, build_model
from mixup_core.models.contract import ClosedFormLoss, HasFilters, MixesLinearly
from mixup_core.schemes import make_label_scheme
from tests.image_fixtures import write_cifar10_fixture, write_cifar100_fixture

SMALL_PATCHES = {"data.dim": 64, "data.n_train": 24, "data.n_test": 20}
IMAGE_CAPS = {"data.max_train": 40, "data.max_test": 20}
FIXTURES = {"cifar10": write_cifar10_fixture, "cifar100": write_cifar100_fixture}


def small_config(data_name: str, root: Path, model_name: str | None = None) -> TrialConfig:
    if data_name == "planted_glyphs":  # generated images: sized by n_train etc., not caps
        return TrialConfig().replace(**{"data.name": data_name, "data.n_train": 40,
                                        "data.n_val": 20, "data.n_test": 20,
                                        "model.name": model_name or "small_cnn",
                                        "model.channels": 8})
    if data_name in IMAGE_SOURCES:
        model = model_name or "small_cnn"
        extra = {**IMAGE_CAPS, "model.name": model, "model.channels": 8}
        if data_name in FIXTURES:
            extra["data.root"] = str(FIXTURES[data_name](root / data_name))
        return TrialConfig().replace(**{"data.name": data_name, **extra})
    return TrialConfig().replace(**{"data.name": data_name, **SMALL_PATCHES,
                                    "model.name": model_name or "patch_cnn"})


def data_for(kind: str, root: Path) -> tuple[TrialConfig, object]:
    name = "feature_noise" if kind == "patches" else "digits"
    config = small_config(name, root)
    return config, build_data(config.data, 0)


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_data_set_gives_labelled_train_and_test_sets_with_rare_masks(tmp_path, name):
    config = small_config(name, tmp_path)
    data = build_data(config.data, 0)
    for x, y, rare in [(data.x_train, data.y_train, data.rare_train),
                       (data.x_test, data.y_test, data.rare_test)]:
        assert x.shape[0] == y.shape[0] == rare.shape[0] > 0
        assert rare.dtype == torch.bool and y.dtype == torch.int64
        assert int(y.min()) >= 0 and int(y.max()) < data.num_classes
    assert (data.image is None) == (name not in IMAGE_SOURCES and name != "planted_glyphs")


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_data_set_is_drawn_the_same_from_the_same_seed(tmp_path, name):
    config = small_config(name, tmp_path)
    first = build_data(config.data, 3)
    again = build_data(config.data, 3)
    assert torch.equal(first.x_train, again.x_train) and torch.equal(first.y_test, again.y_test)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_gives_one_logit_per_class(tmp_path, name):
    config, data = data_for(MODEL_INPUTS[name], tmp_path)
    config = config.replace(**{"model.name": name})
    model = build_model(config.model, data, torch.Generator().manual_seed(0))
    x = data.x_train[:6].float()
    assert model(x).shape == (6, data.num_classes)


@pytest.mark.parametrize("name", [n for n in MODELS if MODEL_INPUTS[n] == "patches"])
def test_closed_form_models_give_the_autograd_gradient(tmp_path, name):
    config, data = data_for("patches", tmp_path)
    model = build_model(config.replace(**{"model.name": name}).model, data,
                        torch.Generator().manual_seed(0))
    assert isinstance(model, ClosedFormLoss)
    x, y = data.x_train, torch.nn.functional.one_hot(data.y_train, data.num_classes).float()
    plan = sample_mix_plan(x.shape[0], alpha=1.0, scheme=make_label_scheme("same", None),
                           fold=False, generator=torch.Generator().manual_seed(1))
    targets = mix_targets(y, plan)
    loss = model.loss_and_grad(x, targets, plan)
    closed = [p.grad.clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    reference = soft_cross_entropy(model(mix_inputs(x, plan)), targets)
    reference.backward()
    assert float(loss) == pytest.approx(float(reference.detach()), rel=1e-5)
    for got, want in zip(closed, [p.grad for p in model.parameters()], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", list(MODELS))
def test_a_model_that_mixes_after_its_first_layer_equals_mixing_its_inputs(tmp_path, name):
    config, data = data_for(MODEL_INPUTS[name], tmp_path)
    model = build_model(config.replace(**{"model.name": name}).model, data,
                        torch.Generator().manual_seed(0)).eval()
    if not isinstance(model, MixesLinearly):
        assert not getattr(model, "mixes_linearly", False)
        return
    x = data.x_train[:8].float()
    plan = sample_mix_plan(8, alpha=1.0, scheme=make_label_scheme("same", None), fold=False,
                           generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(model(x, mix=plan), model(mix_inputs(x, plan)),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
def test_filters_have_one_row_per_class_and_filter(tmp_path, name):
    config, data = data_for(MODEL_INPUTS[name], tmp_path)
    model = build_model(config.replace(**{"model.name": name}).model, data,
                        torch.Generator().manual_seed(0))
    if MODEL_INPUTS[name] == "patches":
        assert isinstance(model, HasFilters)
        filters = model.filters()
        assert filters.shape == (data.num_classes, config.model.width, data.x_train.shape[-1])
    else:
        assert not isinstance(model, HasFilters)
