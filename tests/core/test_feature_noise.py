import torch

from mixup_core import TrialConfig
from mixup_core.data import build_data


def data_for(**updates):
    config = TrialConfig().replace(**updates)
    return config, build_data(config.data, config.seed)


def test_shapes_labels_and_masks_match_the_config():
    _, d = data_for(**{"data.num_classes": 4, "data.num_patches": 5, "data.dim": 64,
                            "data.n_train": 50, "data.n_test": 30})
    assert d.x_train.shape == (50, 5, 64) and d.x_test.shape == (30, 5, 64)
    assert d.y_train.shape == (50,) and set(d.y_train.tolist()) <= set(range(4))
    assert d.rare_train.dtype == torch.bool and d.rare_test.shape == (30,)
    assert d.common_features.shape == (4, 64) and d.rare_features.shape == (4, 64)


def test_common_and_rare_features_are_orthogonal_with_the_configured_norm():
    _, d = data_for(**{"data.num_classes": 3, "data.feature_norm": 2.0, "data.dim": 50})
    features = torch.cat([d.common_features, d.rare_features])
    gram = features @ features.T
    assert torch.allclose(gram, 4.0 * torch.eye(6), atol=1e-4)


def test_the_rare_fraction_of_training_data_is_close_to_rho():
    _, d = data_for(**{"data.rho": 0.2, "data.n_train": 4000, "data.dim": 16, "data.n_test": 10})
    assert abs(float(d.rare_train.float().mean()) - 0.2) < 0.03


def test_the_test_set_has_exactly_the_planned_rare_count():
    _, d = data_for(**{"data.rho": 0.1, "data.n_test": 500, "data.test_rare_fraction": 0.5})
    assert int(d.rare_test.sum()) == 250


def test_the_feature_patch_holds_the_right_feature_and_noise_is_orthogonal_to_features():
    _, d = data_for(**{"data.num_classes": 3, "data.dim": 200, "data.n_train": 100})
    features = torch.cat([d.common_features, d.rare_features])
    patch0 = d.x_train[:, 0]
    expected = torch.where(d.rare_train[:, None], d.rare_features[d.y_train],
                           d.common_features[d.y_train])
    assert torch.allclose(patch0, expected, atol=1e-6)
    # patch 1: a weak copy of another class's common feature
    weights = d.x_train[:, 1] @ d.common_features.T
    other = weights.argmax(dim=1)
    assert bool((other != d.y_train).all())
    assert torch.allclose(weights.max(dim=1).values, torch.full((100,), 0.05), atol=1e-5)
    noise_on_features = d.x_train[:, 2:] @ features.T
    assert float(noise_on_features.abs().max()) < 1e-4
    norms = d.x_train[:, 2].norm(dim=-1)
    assert abs(float(norms.mean()) - 4.0) < 0.3  # σ_p = 4/√d


def test_the_same_seed_gives_the_same_data_and_another_seed_does_not():
    _, a = data_for(seed=3, **{"data.dim": 32})
    _, b = data_for(seed=3, **{"data.dim": 32})
    _, c = data_for(seed=4, **{"data.dim": 32})
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_train, c.x_train)


def test_the_validation_set_is_its_own_seeded_draw_disjoint_from_test_with_its_rare_share():
    config, d = data_for(**{"data.n_val": 400, "data.n_test": 300, "data.rho": 0.2})
    assert d.x_val.shape == (400, config.data.num_patches, config.data.dim)
    assert int(d.rare_val.sum()) == round(0.2 * 400)  # the test set's rare share, exactly
    # the same features: every validation point's feature patch is a common or rare feature
    features = torch.cat([d.common_features, d.rare_features])
    assert torch.allclose((d.x_val[:, 0] @ features.T).abs().max(dim=1).values,
                          torch.ones(400), atol=1e-5)
    # no validation point is a test point, and the noise differs everywhere
    distances = torch.cdist(d.x_val.flatten(1), d.x_test.flatten(1))
    assert float(distances.min()) > 1.0
    # its own stream: changing the validation size leaves train and test bit for bit alone
    _, other = data_for(**{"data.n_val": 50, "data.n_test": 300, "data.rho": 0.2})
    assert torch.equal(other.x_train, d.x_train) and torch.equal(other.x_test, d.x_test)
    assert not torch.equal(other.x_val, d.x_val[:50])
    # and it follows the seed
    _, again = data_for(**{"data.n_val": 400, "data.n_test": 300, "data.rho": 0.2})
    _, reseeded = data_for(seed=1, **{"data.n_val": 400, "data.n_test": 300, "data.rho": 0.2})
    assert torch.equal(again.x_val, d.x_val) and not torch.equal(reseeded.x_val[:, 2], d.x_val[:, 2])
