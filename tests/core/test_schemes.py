import pickle

import pytest
import torch

from mixup_core.mixing import sample_mix_plan
from mixup_core.registry import Registry
from mixup_core.schemes import LABEL_SCHEMES, make_label_scheme

SCHEMES = LABEL_SCHEMES.names()


def draw(name: str, seed: int, n: int = 512, alpha: float = 0.7):
    g = torch.Generator().manual_seed(seed)
    return sample_mix_plan(n, alpha=alpha, scheme=make_label_scheme(name), fold=False, generator=g)


@pytest.mark.parametrize("name", SCHEMES)
def test_every_scheme_gives_label_weights_in_the_unit_interval(name):
    plan = draw(name, seed=0)
    assert plan.label_weight.shape == plan.lam.shape
    assert bool(((plan.label_weight >= 0) & (plan.label_weight <= 1)).all())


@pytest.mark.parametrize("name", SCHEMES)
def test_every_scheme_draws_the_same_values_from_the_same_seed(name):
    a, b, c = draw(name, seed=3), draw(name, seed=3), draw(name, seed=4)
    assert torch.equal(a.label_weight, b.label_weight) and torch.equal(a.partner, b.partner)
    assert not torch.equal(a.lam, c.lam)


@pytest.mark.parametrize("name", SCHEMES)
def test_every_scheme_is_picklable_and_behaves_the_same_after(name):
    scheme = make_label_scheme(name)
    clone = pickle.loads(pickle.dumps(scheme))
    assert clone == scheme
    lam = torch.linspace(0, 1, 11)
    fresh = torch.full_like(lam, 0.3)
    assert torch.equal(scheme.label_weights(lam, lambda: fresh),
                       clone.label_weights(lam, lambda: fresh))


@pytest.mark.parametrize("name", SCHEMES)
def test_every_scheme_is_documented_in_one_line(name):
    summary = LABEL_SCHEMES.get(name).summary
    assert summary and "\n" not in summary


@pytest.mark.parametrize("name", SCHEMES)
def test_draws_ignore_the_global_torch_rng(name):
    torch.manual_seed(1)
    a = draw(name, seed=5)
    torch.manual_seed(2)
    b = draw(name, seed=5)
    assert torch.equal(a.lam, b.lam) and torch.equal(a.label_weight, b.label_weight)


def test_same_copies_lambda_and_independent_does_not():
    same, independent = draw("same", seed=1), draw("independent", seed=1)
    assert torch.equal(same.label_weight, same.lam)
    assert not torch.allclose(independent.label_weight, independent.lam)
    corr = torch.corrcoef(torch.stack([independent.lam, independent.label_weight]))[0, 1]
    assert abs(float(corr)) < 0.15


def test_deterministic_maps_follow_their_formulas():
    lam = torch.tensor([0.0, 0.2, 0.5, 0.7, 1.0])
    no_resample = lambda: pytest.fail("deterministic scheme drew random numbers")  # noqa: E731
    assert torch.allclose(make_label_scheme("power", 1.0).label_weights(lam, no_resample), lam)
    sharp = make_label_scheme("power", 2.0).label_weights(lam, no_resample)
    assert torch.allclose(sharp, lam**2 / (lam**2 + (1 - lam) ** 2))
    assert torch.equal(make_label_scheme("dominant").label_weights(lam, no_resample),
                       torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0]))
    assert torch.equal(make_label_scheme("constant", 0.25).label_weights(lam, no_resample),
                       torch.full_like(lam, 0.25))
    assert torch.equal(make_label_scheme("threshold", 0.75).label_weights(lam, no_resample),
                       torch.tensor([0.0, 0.0, 0.5, 0.7, 1.0]))


def test_registries_refuse_duplicate_names_and_name_the_known_ones():
    registry: Registry[int] = Registry("thing")
    registry.register("a")(1)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a")(2)
    with pytest.raises(KeyError, match="known: a"):
        registry.get("b")
