"""Deep linear networks: closed-form gradients against autograd, invariants, initialisations."""
import numpy as np
import pytest
import torch

from gdalign import losses as L
from gdalign import network as N
from gdalign.data import gaussian_separable, toy

DS = toy()
WIDTHS = [[2, 1], [2, 3, 1], [2, 1, 3, 1], [2, 5, 4, 3, 1], [2, 3, 3, 3, 3, 3, 1]]


def autograd_grads(W, ds, loss):
    Wr = [w.clone().requires_grad_(True) for w in W]
    s = N.w_prod(Wr) @ torch.as_tensor(ds.Z).T
    R = L.get(loss).value(s).mean(1)
    return R.detach(), torch.autograd.grad(R.sum(), Wr)


@pytest.mark.parametrize("loss", sorted(L.LOSSES))
@pytest.mark.parametrize("widths", WIDTHS, ids=lambda w: "-".join(map(str, w)))
@pytest.mark.parametrize("batch", [1, 3])
def test_closed_form_gradients_match_autograd(loss, widths, batch):
    W = N.init_network(widths, "small", seeds=range(batch), scale=0.7, data=DS, loss=loss)
    R_ref, g_ref = autograd_grads(W, DS, loss)
    lr, R, G = N.risk_and_grads(W, DS, loss)
    assert torch.allclose(R, R_ref, rtol=1e-13)
    for a, b in zip(G, g_ref):
        assert (a - b).abs().max() <= 1e-12 * max(1.0, b.abs().max().item())
    # the scaled gradient (field of the reparametrised flow) is grad R / R
    _, _, Gs = N.risk_and_grads(W, DS, loss, scaled=True)
    for a, b in zip(Gs, g_ref):
        assert torch.allclose(a * R.view(-1, 1, 1), b, rtol=1e-11, atol=1e-14)


def test_gradients_on_a_higher_dimensional_set():
    ds = gaussian_separable(60, 7, seed=3)
    W = N.init_network([7, 6, 1, 5, 1], "small", seeds=[0, 1], scale=0.8, data=ds, loss="logistic")
    _, g_ref = autograd_grads(W, ds, "logistic")
    _, _, G = N.risk_and_grads(W, ds, "logistic")
    for a, b in zip(G, g_ref):
        assert (a - b).abs().max() <= 1e-12 * max(1.0, b.abs().max().item())


def test_multiclass_gradients_match_autograd():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(30, 4, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (30,), generator=g)
    W = N.init_network([4, 5, 3], "small", seeds=[0, 1], scale=0.5, sign_fix=False)
    Wr = [w.clone().requires_grad_(True) for w in W]
    O = torch.einsum("bkd,nd->bnk", N.end_to_end(Wr), X)
    R = torch.nn.functional.cross_entropy(O.reshape(-1, 3), labels.repeat(2), reduction="none").view(2, 30).mean(1)
    g_ref = torch.autograd.grad(R.sum(), Wr)
    lr, R2, G = N.multiclass_risk_and_grads(W, X, labels)
    assert torch.allclose(R2, R.detach(), rtol=1e-13)
    for a, b in zip(G, g_ref):
        assert (a - b).abs().max() <= 1e-12
    _, _, Gs = N.multiclass_risk_and_grads(W, X, labels, scaled=True)
    for a, b in zip(Gs, g_ref):
        assert torch.allclose(a * R2.view(-1, 1, 1), b, rtol=1e-11, atol=1e-15)


def test_gradient_is_rank_one_outer_product():
    """d_L = 1: dR/dW_k is rank one and ||dR/dW_1|| = ||W_L..W_2|| ||grad R(w_prod)|| (SPEC section 1)."""
    W = N.init_network([2, 5, 4, 3, 1], "small", seeds=[4], scale=0.9, data=DS, loss="exp")
    _, _, G = N.risk_and_grads(W, DS, "exp")
    for g in G:
        s = torch.linalg.svdvals(g[0])
        assert s[1:].max() <= 1e-12 * s[0] if len(s) > 1 else True
    top = N.end_to_end(W[1:])[0, 0]  # W_L ... W_2 as a row vector
    s = N.w_prod(W) @ torch.as_tensor(DS.Z).T
    grad_w = (L.get("exp").deriv(s) @ torch.as_tensor(DS.Z) / DS.n)[0]
    assert torch.isclose(G[0][0].norm(), top.norm() * grad_w.norm(), rtol=1e-12)


def test_one_gd_step_changes_A_by_exactly_eta_squared_term():
    """A_k(t+1) - A_k(t) = eta^2 (G_k G_k^T - G_{k+1}^T G_{k+1}) for any eta (SPEC section 3.2)."""
    W = N.init_network([2, 5, 4, 3, 1], "small", seeds=[0, 1, 2], scale=0.8, data=DS, loss="logistic")
    _, _, G = N.risk_and_grads(W, DS, "logistic")
    for eta in [1e-3, 0.3, 5.0]:
        Wn = [w - eta * g for w, g in zip(W, G)]
        A0, A1 = N.invariant_matrices(W), N.invariant_matrices(Wn)
        for k in range(len(W) - 1):
            pred = eta ** 2 * (G[k] @ G[k].transpose(1, 2) - G[k + 1].transpose(1, 2) @ G[k + 1])
            err = (A1[k] - A0[k] - pred).abs().max().item()
            assert err <= 1e-12 * max(1.0, A0[k].abs().max().item()), (eta, k, err)


@pytest.mark.parametrize("scheme", ["zero_first", "small", "balanced", "large"])
def test_initialisations_meet_assumption2(scheme):
    W = N.init_network([2, 5, 4, 3, 1], scheme, seeds=range(16), scale=0.5, data=DS, loss="exp")
    assert N.assumption2(W, DS, "exp").all()


def test_balanced_init_has_D_zero_and_rank_one_layers():
    W = N.init_network([2, 5, 4, 3, 1], "balanced", seeds=range(4), scale=1.3, data=DS, loss="logistic")
    assert N.imbalance_D(W).abs().max() < 1e-12
    for A in N.invariant_matrices(W):
        assert A.abs().max() < 1e-12


def test_zero_first_layer_and_explicit_init():
    W = N.init_network([2, 3, 1], "zero_first", seeds=[0], scale=0.5)
    assert torch.count_nonzero(W[0]) == 0 and torch.count_nonzero(W[1]) > 0
    W = N.init_network(None, "explicit", matrices=[[[1.0]], [[-1.0]]])
    assert [tuple(w.shape) for w in W] == [(1, 1, 1), (1, 1, 1)]


def test_D_matches_its_definition():
    W = N.init_network([2, 4, 3, 1], "large", seeds=[7], scale=0.6, data=DS, loss="exp")
    w = [x[0] for x in W]
    fro2 = [float((m * m).sum()) for m in w]
    D = max(fro2) - fro2[-1] + sum(float(torch.linalg.matrix_norm(w[k] @ w[k].T - w[k + 1].T @ w[k + 1], ord=2))
                                   for k in range(len(w) - 1))
    assert abs(N.imbalance_D(W).item() - D) < 1e-12 * max(1.0, D)


def test_same_seed_same_network_whatever_the_batch():
    a = N.init_network([2, 5, 1], "small", seeds=[3, 9], scale=0.4, data=DS, loss="exp")
    b = N.init_network([2, 5, 1], "small", seeds=[9], scale=0.4, data=DS, loss="exp")
    assert all(torch.equal(x[1], y[0]) for x, y in zip(a, b))


@pytest.mark.parametrize("kwargs,match", [
    (dict(widths=[2], scheme="small"), "widths must list"),
    (dict(widths=[2, 0, 1], scheme="small"), r"widths\[1\] must be a positive integer"),
    (dict(widths=[2, 3, 1], scheme="gaussian"), "init scheme 'gaussian' is not known"),
    (dict(widths=[2, 3, 1], scheme="small", scale=-1.0), "scale must be a positive"),
    (dict(widths=[2, 3, 1], scheme="small", seeds=[]), "seeds must name"),
    (dict(widths=[2, 3, 1], scheme="small"), "needs data and loss"),
    (dict(widths=None, scheme="explicit", matrices=[np.ones((3, 2)), np.ones((1, 2))]), "columns"),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        N.init_network(**kwargs)


@pytest.mark.parametrize("widths", WIDTHS, ids=lambda w: "-".join(map(str, w)))
def test_gd_hot_path_factors_match_the_closed_form_gradients(widths):
    """binary_step_factors / binary_sq_norms (the GD hot path) against risk_and_grads."""
    W = N.init_network(widths, "small", seeds=range(3), scale=0.6, data=DS, loss="logistic")
    Z = torch.as_tensor(DS.Z)
    R, F = N.binary_step_factors(W, Z.T.contiguous(), Z / DS.n, L.get("logistic"))
    _, R_ref, G = N.risk_and_grads(W, DS, "logistic")
    assert torch.allclose(R, R_ref, rtol=1e-14)
    for (A, Nk), g in zip(F, G):
        dense = Nk if A is None else torch.bmm(A.transpose(1, 2), Nk)
        assert torch.allclose(dense, g, rtol=1e-12, atol=1e-16)
    ref = torch.stack([(g * g).sum(dim=(1, 2)) for g in G], dim=1)
    assert torch.allclose(N.binary_sq_norms(F), ref, rtol=1e-12)
    assert torch.allclose(N.factor_sq_norms(F), ref, rtol=1e-12)
