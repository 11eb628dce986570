import pytest
import torch
import torch.nn.functional as F

from mixup_core.mixing import (
    mix_inputs,
    mix_targets,
    sample_lambda,
    sample_mix_plan,
    soft_cross_entropy,
    soft_targets,
)
from mixup_core.models import PatchCNN
from mixup_core.schemes import make_label_scheme


def plan_for(n: int, seed: int = 0, scheme: str = "same", alpha: float = 1.0):
    return sample_mix_plan(n, alpha=alpha, scheme=make_label_scheme(scheme), fold=False,
                           generator=torch.Generator().manual_seed(seed))


def model(power: int = 3, seed: int = 0, k: int = 3, d: int = 16) -> PatchCNN:
    return PatchCNN(num_classes=k, dim=d, width=4, power=power, init_std=0.5,
                    generator=torch.Generator().manual_seed(seed))


def test_soft_target_loss_with_same_equals_the_two_target_form():
    n, k = 32, 3
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(n, k, generator=gen)
    y = torch.randint(0, k, (n,), generator=gen)
    plan = plan_for(n)
    soft = soft_cross_entropy(logits, mix_targets(soft_targets(y, k), plan))
    lam = plan.lam
    reference = (lam * F.cross_entropy(logits, y, reduction="none")
                 + (1 - lam) * F.cross_entropy(logits, y[plan.partner], reduction="none")).mean()
    assert torch.allclose(soft, reference, atol=1e-6)


def test_mixed_inputs_follow_the_mixup_formula_and_partners_are_a_permutation():
    x = torch.randn(10, 3, 4)
    plan = plan_for(10, seed=2)
    assert sorted(plan.partner.tolist()) == list(range(10))
    i = 4
    j = int(plan.partner[i])
    expected = plan.lam[i] * x[i] + (1 - plan.lam[i]) * x[j]
    assert torch.allclose(mix_inputs(x, plan)[i], expected, atol=1e-6)


def test_folded_lambda_weighs_the_dominant_input():
    lam = sample_lambda(1000, alpha=0.4, fold=True, generator=torch.Generator().manual_seed(0))
    assert float(lam.min()) >= 0.5 and float(lam.max()) <= 1.0


def test_lambda_follows_beta_alpha_alpha():
    lam = sample_lambda(20000, alpha=0.5, fold=False, generator=torch.Generator().manual_seed(0))
    # Beta(0.5, 0.5): mean 1/2, variance 1/8.
    assert abs(float(lam.mean()) - 0.5) < 0.01
    assert abs(float(lam.var()) - 0.125) < 0.005


def test_alpha_zero_cannot_be_sampled_as_a_mix():
    with pytest.raises(ValueError, match="alpha"):
        plan_for(4, alpha=0.0)


def test_mixing_after_the_linear_first_layer_equals_mixing_inputs():
    net = model()
    x = torch.randn(12, 3, 16)
    plan = plan_for(12, seed=5)
    assert torch.allclose(net(x, mix=plan), net(mix_inputs(x, plan)), atol=1e-5)


@pytest.mark.parametrize("power", [1, 2, 3, 4])
@pytest.mark.parametrize("mixed", [False, True])
def test_closed_form_gradient_equals_autograd(power, mixed):
    net = model(power=power)
    gen = torch.Generator().manual_seed(power)
    x = torch.randn(12, 3, 16, generator=gen)
    y = torch.randint(0, 3, (12,), generator=gen)
    plan = plan_for(12, seed=power, scheme="independent") if mixed else None
    targets = soft_targets(y, 3)
    if plan is not None:
        targets = mix_targets(targets, plan)
    loss = net.loss_and_grad(x, targets, plan)
    closed = net.weight.grad.clone()
    net.weight.grad = None
    reference = soft_cross_entropy(net(x, mix=plan), targets)
    reference.backward()
    assert torch.allclose(loss, reference.detach(), atol=1e-6)
    assert torch.allclose(closed, net.weight.grad, atol=1e-6, rtol=1e-4)
