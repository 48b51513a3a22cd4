"""Losses: values and derivatives against autograd and closed forms, stability in the log domain."""
import math

import pytest
import torch

from gdalign import losses as L

S = torch.linspace(-30, 30, 241, dtype=torch.float64)
NAMES = sorted(L.LOSSES)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_matches_autograd(name):
    loss = L.get(name)
    s = S.clone().requires_grad_(True)
    # avoid the kinks of hinge (s = 1) and the sign change of squared (s = 1)
    keep = (s.detach() - 1.0).abs() > 1e-6
    v = loss.value(s)
    (g,) = torch.autograd.grad(v.sum(), s)
    assert torch.allclose(loss.deriv(S)[keep], g[keep], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name,f", [
    ("exp", lambda s: torch.exp(-s)),
    ("logistic", lambda s: torch.log1p(torch.exp(-s))),
    ("squared", lambda s: (1 - s) ** 2),
    ("hinge", lambda s: torch.clamp(1 - s, min=0)),
    ("poly", lambda s: torch.where(s >= 0, (1 + s.clamp(min=0)) ** -2.0, 1 - 2.0 * s)),
])
def test_values_match_closed_forms(name, f):
    assert torch.allclose(L.get(name).value(S), f(S), rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("name", ["exp", "logistic"])
def test_log_risk_finite_at_ln_inv_risk_1e4(name):
    loss = L.get(name)
    s = torch.tensor([[1e4, 1e4 + 5.0, 2e4]], dtype=torch.float64)
    lr, c = L.risk_grad_over_risk(loss, s)
    # ln R = ln((e^-1e4 (1 + e^-5 + e^-1e4)) / 3) to leading order, for both losses
    expected = -1e4 + math.log1p(math.exp(-5.0)) - math.log(3.0)
    assert torch.isfinite(lr).all() and abs(lr.item() - expected) < 1e-9
    # grad R / R = sum_i c_i z_i with c a signed softmax: finite, weights sum to -1
    assert torch.isfinite(c).all() and abs(c.sum().item() + 1.0) < 1e-12


def test_risk_grad_over_risk_equals_grad_over_risk_where_representable():
    for name in NAMES:
        loss = L.get(name)
        s = torch.tensor([[-2.0, 0.3, 1.7, 4.0]], dtype=torch.float64)
        lr, R, c = L.risk_and_grad(loss, s)
        assert torch.allclose(R, loss.value(s).mean(1), rtol=1e-14)
        assert torch.allclose(c, loss.deriv(s) / 4, rtol=1e-13, atol=1e-300)


def test_hinge_zero_risk_has_zero_gradient_not_nan():
    lr, c = L.risk_grad_over_risk(L.get("hinge"), torch.tensor([[2.0, 3.0]], dtype=torch.float64))
    assert lr.item() == -math.inf and torch.equal(c, torch.zeros_like(c))


@pytest.mark.parametrize("name", ["logistic", "poly"])
def test_assumption4_constants_bound_the_derivative(name):
    """|l'| <= G and l' is beta-Lipschitz, checked on a fine grid."""
    loss = L.get(name)
    s = torch.linspace(-50, 50, 200001, dtype=torch.float64)
    d = loss.deriv(s)
    assert d.abs().max().item() <= loss.G * (1 + 1e-12)
    slopes = (d[1:] - d[:-1]).abs() / (s[1:] - s[:-1])
    assert slopes.max().item() <= loss.beta * (1 + 1e-6)
    # and the constants are not loose by more than a factor 2 (they are the true sups)
    assert slopes.max().item() >= loss.beta / 2 and d.abs().max().item() >= loss.G / 2


def test_assumption1_flags():
    assert {n for n in NAMES if L.get(n).assumption1} == {"exp", "logistic", "poly"}
    for n in ["exp", "logistic", "poly"]:
        d = L.get(n).deriv(S)
        assert (d < 0).all(), n  # strictly decreasing on the grid
    assert L.get("exp").beta is None and L.get("exp").G is None  # exp: no global Assumption 4


def test_unknown_loss_is_a_clear_error():
    with pytest.raises(ValueError, match="loss 'cubic' is not known"):
        L.get("cubic")
    with pytest.raises(ValueError, match="k must be a positive"):
        L.PolyTail(k=-1.0)
