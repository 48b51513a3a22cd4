"""Gradient flow and gradient descent: invariants, Lemma 2, the descent inequality, determinism."""
import math

import numpy as np
import pytest
import torch

from gdalign import network as N
from gdalign.data import flip_labels, toy
from gdalign.dynamics import beta_R, gradient_descent, gradient_flow

DS = toy()
UB = np.array([1.0, 1.0]) / math.sqrt(2.0)
L4 = [2, 5, 4, 3, 1]


@pytest.fixture(scope="module", params=["exp", "logistic"])
def flow_run(request):
    loss = request.param
    W0 = N.init_network(L4, "small", seeds=[0, 1, 2], scale=0.5, data=DS, loss=loss)
    return loss, gradient_flow(W0, DS, loss, target=1000.0, n_records=40, u_bar=UB, gamma=DS.meta["gamma"],
                               progress=False)


def test_flow_reaches_the_target_exactly(flow_run):
    _, run = flow_run
    lam = run.final["neg_log_risk"].to_numpy()
    assert abs(lam.min() - 1000.0) < 1e-8 and (lam >= 1000.0 - 1e-8).all()
    # every record's risk is finite and the risk never increases (eq. 1)
    for _, m in run.table.groupby("member"):
        assert np.isfinite(m["log_risk"]).all() and (np.diff(m["log_risk"]) <= 1e-12).all()


def test_flow_conserves_eq2_to_relative_1e8(flow_run):
    """||A_k(t) - A_k(0)||_2 <= 1e-8 max_k ||W_k||_F^2 at every record from the start to ln(1/R) = 1000."""
    _, run = flow_run
    t = run.table
    scale = np.max([t[f"fro_{k}"] ** 2 for k in range(1, 5)], axis=0)
    for k in range(1, 4):
        assert (t[f"inv_drift_{k}"] / scale).max() <= 1e-8
        assert (t[f"fro_diff_drift_{k}"] / scale).max() <= 1e-8


def test_lemma2_bounds_hold_along_the_flow(flow_run):
    _, run = flow_run
    t = run.table
    tol = 1e-8 * np.max([t[f"fro_{k}"] ** 2 for k in range(1, 5)], axis=0)
    for k in range(1, 5):
        assert (t[f"gap_{k}"] <= t["D"] + tol).all()  # Lemma 2 (i)
    for k in range(1, 4):
        assert (t[f"a_{k}"] ** 2 >= t[f"lemma2_rhs_{k}"] - 1e-8).all()  # Lemma 2 (ii)


def test_flow_aligns_and_finds_the_max_margin_direction(flow_run):
    _, run = flow_run
    f = run.final
    assert (f["v1_ubar"] > 0.9999).all() and (f["wprod_ubar"] > 0.9999).all()
    assert (f["wprod_v1"] > 0.9999).all()


def test_risk_clock_follows_the_gradient_flow_path_in_real_time():
    """Same path: the time-clock run to t_max and the risk-clock run to its ln(1/R) agree, and so do their times."""
    W0 = N.init_network([2, 3, 3, 1], "small", seeds=[0, 1], scale=0.6, data=DS, loss="logistic")
    tr = gradient_flow(W0, DS, "logistic", clock="time", t_max=200.0, n_records=5, progress=False)
    lam = float(tr.final["neg_log_risk"].min())
    b = int(tr.final["neg_log_risk"].to_numpy().argmin())
    rr = gradient_flow([w[b:b + 1] for w in W0], DS, "logistic", target=lam, n_records=5, progress=False)
    # t is accumulated by quadrature over solver steps: about 1% relative (see gradient_flow)
    assert abs(math.expm1(rr.final["log1p_t"][0]) / 200.0 - 1) < 1e-2
    for a, c in zip(rr.W, tr.W):
        assert torch.allclose(a[0], c[b], rtol=1e-6, atol=1e-8)


def test_flow_is_deterministic_and_batch_independent():
    W0 = N.init_network([2, 4, 1], "small", seeds=[5, 6], scale=0.5, data=DS, loss="exp")
    a = gradient_flow(W0, DS, "exp", target=50.0, n_records=5, progress=False)
    b = gradient_flow(W0, DS, "exp", target=50.0, n_records=5, progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.W, b.W))
    assert a.table.drop(columns=[]).equals(b.table)


def test_flow_on_non_separable_data_stalls_with_a_clear_error():
    bad = flip_labels(DS, indices=[0, 2])
    W0 = N.init_network([2, 3, 1], "small", seeds=[0], scale=0.5, data=bad, loss="exp")
    with pytest.raises(RuntimeError, match="stalling"):
        gradient_flow(W0, bad, "exp", target=50.0, max_fev=3000, progress=False)
    run = gradient_flow(W0, bad, "exp", clock="time", t_max=100.0, n_records=5, progress=False)
    assert run.final["neg_log_risk"].max() < 5.0  # the risk stays away from 0


@pytest.fixture(scope="module")
def gd_a5():
    W0 = N.init_network([2, 3, 3, 1], "small", seeds=[0, 1, 2], scale=0.4, data=DS, loss="logistic")
    return gradient_descent(W0, DS, "logistic", 3000, "assumption5", n_records=30, u_bar=UB, progress=False)


def test_assumption5_descent_inequality_at_every_step(gd_a5):
    s = gd_a5.summary
    assert (s["n_descent_violations"] == 0).all() and (s["max_descent_slack"] <= 1e-12).all()
    assert (s["ball_decreases"] == 0).all() and (s["risk_increases"] == 0).all()


def test_assumption5_budget_and_invariant_drift(gd_a5):
    t = gd_a5.table
    R0 = math.exp(t[t["record"] == 0]["log_risk"].max())
    assert (t["sum_eta_g2"] <= 2 * R0).all() and (t["S"] <= t["sum_eta_g2"] + 1e-15).all()
    for k in range(1, 3):
        assert (t[f"inv_drift_{k}"] <= t["S"] + 1e-14).all()
    # eta_t = min(1/beta(R_t), 1) exactly
    assert np.allclose(t["eta"], np.minimum(1 / beta_R(t["ball_R"].to_numpy(), 3, "logistic"), 1.0), rtol=1e-14)
    for _, m in t.groupby("member"):
        assert (np.diff(m["ball_R"]) >= 0).all()


def test_descent_inequality_check_can_fail():
    W0 = N.init_network([2, 3, 3, 1], "small", seeds=[0], scale=1.0, data=DS, loss="logistic")
    run = gradient_descent(W0, DS, "logistic", 50, 20.0, n_records=5, progress=False)
    assert run.summary["n_descent_violations"].iloc[0] > 0


def test_gd_step_matches_the_closed_form_update():
    W0 = N.init_network([2, 3, 1], "small", seeds=[0, 1], scale=0.5, data=DS, loss="exp")
    run = gradient_descent(W0, DS, "exp", 1, 0.1, n_records=2, progress=False)
    _, _, G = N.risk_and_grads(W0, DS, "exp")
    assert all(torch.allclose(w, w0 - 0.1 * g, rtol=0, atol=1e-15) for w, w0, g in zip(run.W, W0, G))


def test_gd_is_deterministic_and_callable_schedules_work():
    W0 = N.init_network([2, 4, 1], "small", seeds=[1, 2], scale=0.5, data=DS, loss="logistic")
    a = gradient_descent(W0, DS, "logistic", 200, lambda t: 0.5 / math.sqrt(t + 1), n_records=10, progress=False)
    b = gradient_descent(W0, DS, "logistic", 200, lambda t: 0.5 / math.sqrt(t + 1), n_records=10, progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.W, b.W)) and a.table.equals(b.table)
    assert np.isclose(a.table["eta"].iloc[-1], 0.5 / math.sqrt(201))


def test_lemma6_constant_step_leaves_the_ball():
    W0 = N.init_network([2, 3, 1], "small", seeds=[0], scale=0.2, data=DS, loss="logistic")
    R = 1.0
    assert max(float(w.norm()) for w in W0) < R
    run = gradient_descent(W0, DS, "logistic", 300, 1 / beta_R(R, 2, "logistic"), ball=R, n_records=5,
                           progress=False)
    assert 0 < run.summary["first_exit"].iloc[0] <= 300


@pytest.mark.parametrize("call,match", [
    (lambda W: gradient_descent(W, DS, "logistic", -1, 0.1), "steps must be"),
    (lambda W: gradient_descent(W, DS, "logistic", 10, "armijo"), "step must be"),
    (lambda W: gradient_descent(W, DS, "logistic", 10, -0.1), "step must be"),
    (lambda W: gradient_descent(W, DS, "exp", 10, "assumption5"), "Assumption 4"),
    (lambda W: gradient_flow(W, DS, "exp", clock="wall"), "clock must be"),
    (lambda W: gradient_flow(W, DS, "exp", target=0.01), "not above the start"),
    (lambda W: gradient_flow(W, DS, "exp", target=None, t_max=-1.0), "t_max"),
    (lambda W: gradient_flow(W, DS, "exp", method="Euler"), "OdeSolver"),
    (lambda W: gradient_flow([W[0] * np.nan] + W[1:], DS, "exp"), "NaN"),
])
def test_bad_arguments_raise_clear_errors(call, match):
    W = N.init_network([2, 3, 1], "small", seeds=[0], scale=0.5, data=DS, loss="exp")
    with pytest.raises(ValueError, match=match):
        call(W)


def test_multiclass_flow_runs_and_conserves_the_invariant():
    g = np.random.default_rng(0)
    X = g.normal(size=(30, 3))
    X /= np.linalg.norm(X, axis=1).max()
    labels = np.argmax(X @ g.normal(size=(3, 3)), axis=1)

    class Data:  # multiclass data: inputs only
        pass
    d = Data()
    d.X = X
    W0 = N.init_network([3, 4, 3], "small", seeds=[0], scale=0.5, sign_fix=False)
    run = gradient_flow(W0, d, "logistic", target=20.0, labels=labels, n_records=5, progress=False)
    assert run.final["neg_log_risk"].min() >= 20.0 - 1e-8
    assert run.table["inv_drift_1"].max() < 1e-8 * run.table["fro_1"].max() ** 2
