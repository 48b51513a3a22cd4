"""The exact max-margin solver: u_bar, gamma, KKT, support set, Assumption 3, alpha, Lemma 4."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from gdalign import data as D
from gdalign import losses as L
from gdalign.margin import NOT_SEPARABLE, alpha_direct_2d, is_separable, lemma4_threshold, max_margin


def _angle(u, v):
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    return 2.0 * math.asin(min(1.0, np.linalg.norm(u - v) / 2.0))


def _perp_basis(u):
    """Orthonormal basis (d, d-1) of u^perp, independent of the solver's code."""
    d = u.size
    Q, _ = np.linalg.qr(np.column_stack([u, np.eye(d)]))
    return Q[:, 1:d]


def _constructed(d, kind, rng, gamma0=0.2, n_far=15):
    """Z with a known u_bar, gamma and support set; 0 inside or on the boundary of conv(Pi_perp z_S).

    kind: "interior" (|S| = d, generic: alpha > 0), "extra" (|S| = d + 1, alpha > 0, hull path),
    "boundary" (|S| = d spanning, but one support vector must have lambda = 0: alpha = 0),
    "nonspanning" (|S| = d - 1: S does not span, alpha = 0).
    """
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    B = _perp_basis(u)
    m = d - 1
    if kind in ("interior", "extra"):
        Q = rng.uniform(-0.5, 0.5, size=(d - 1, m))
        mu = rng.uniform(0.2, 1.0, size=d - 1)
        Q = np.vstack([Q, -(mu @ Q)])  # 0 = strictly positive combination of all d points
        if kind == "extra":
            Q = np.vstack([Q, rng.uniform(-0.3, 0.3, size=(1, m))])
    else:
        Q = rng.uniform(-0.5, 0.5, size=(d - 2, m))
        mu = rng.uniform(0.2, 1.0, size=d - 2)
        Q = np.vstack([Q, -(mu @ Q)]) if d > 2 else np.zeros((1, m))  # 0 in the relative interior of these
        if kind == "boundary":
            Q = np.vstack([Q, rng.uniform(-0.5, 0.5, size=(1, m))])  # an extra vertex: 0 on a facet
    S = gamma0 * u + Q @ B.T
    t = rng.uniform(gamma0 + 0.3, 1.0, size=n_far)
    far = t[:, None] * u + rng.uniform(-0.3, 0.3, size=(n_far, m)) @ B.T
    Z = np.vstack([S, far])
    scale = 1.0 / np.linalg.norm(Z, axis=1).max()
    return Z * scale, u, gamma0 * scale, np.arange(S.shape[0])


def _alpha_bruteforce_3d(Z, u, S, k=20_000):
    """min over unit xi perpendicular to u (a circle when d = 3) of max_{i in S} <xi, z_i>.

    A grid of k angles, then a grid of k angles over the best two cells: accurate to ~1e-8.
    """
    B = _perp_basis(u)
    a, b = Z[S] @ B[:, 0], Z[S] @ B[:, 1]
    h = lambda th: (np.cos(th)[:, None] * a + np.sin(th)[:, None] * b).max(axis=1)  # noqa: E731
    th = np.linspace(0.0, 2 * np.pi, k, endpoint=False)
    t0 = th[np.argmin(h(th))]
    fine = np.linspace(t0 - 2 * np.pi / k, t0 + 2 * np.pi / k, k)
    return float(min(h(th).min(), h(fine).min()))


# ------------------------------------------------------------------ the toy set

def test_toy_u_bar_gamma_support_and_alpha():
    ds = D.toy()
    r = max_margin(ds)
    u = np.array([1.0, 1.0]) / np.sqrt(2.0)
    np.testing.assert_allclose(r.u_bar, u, rtol=0, atol=1e-14)
    assert r.gamma == pytest.approx(ds.meta["gamma"], rel=1e-13)
    assert r.gamma == pytest.approx(float((ds.Z @ u).min()), rel=1e-13)
    assert r.support.tolist() == [0, 1, 2, 3]
    assert r.assumption3 and r.assumption3_relaxed and r.dual_positive
    # the support z's are (0.5,1.5) and (1.5,0.5) (scaled), each twice: equal duals after the split
    np.testing.assert_allclose(r.lambda_[:4], r.lambda_[0], rtol=1e-12)
    assert (r.lambda_[4:] == 0).all()
    # alpha, directly in 2-D from the two unit vectors perpendicular to u_bar (computed here)
    e = np.array([-u[1], u[0]])
    t = ds.Z[:4] @ e
    direct = min(t.max(), (-t).max())
    assert r.alpha > 0
    assert r.alpha == pytest.approx(direct, rel=1e-12)
    assert r.alpha == pytest.approx(r.gamma / 2, rel=1e-12)  # <e, (0.5, 1.5)> = 1/sqrt(2) = (margin sqrt 2)/2
    assert alpha_direct_2d(r.u_bar, ds.Z[r.support]) == pytest.approx(direct, rel=1e-12)


def test_duplicates_are_all_support_points_with_equal_duals():
    ds = D.toy()
    Z = np.vstack([ds.Z, ds.Z[:2], ds.Z[:1]])  # rows 16, 17, 18 repeat rows 0, 1, 0
    r = max_margin(Z)
    assert r.support.tolist() == [0, 1, 2, 3, 16, 17, 18]
    np.testing.assert_allclose(r.lambda_[[0, 18]], r.lambda_[0], rtol=1e-12)
    np.testing.assert_allclose(Z.T @ r.lambda_, r.w, rtol=0, atol=1e-12 * np.linalg.norm(r.w))
    np.testing.assert_allclose(r.u_bar, [2 ** -0.5, 2 ** -0.5], atol=1e-14)
    assert r.dual_positive and r.alpha == pytest.approx(r.gamma / 2, rel=1e-12)


# ------------------------------------------------------------------ against scikit-learn

@pytest.mark.parametrize("n, d, seed", [(40, 2, 0), (60, 3, 1), (60, 5, 2), (100, 8, 3), (100, 10, 4), (80, 20, 5)])
def test_agrees_with_linearsvc(n, d, seed):
    from sklearn.svm import LinearSVC

    ds = D.gaussian_separable(n, d, seed=seed, margin_gap=0.1)
    r = max_margin(ds)
    # hinge loss, dual coordinate descent: with C = 1e6 far above every lambda_i the soft-margin
    # problem has the hard-margin solution. tol = 1e-8 converges; a much tighter tol (1e-12)
    # stalls liblinear at max_iter with errors up to 0.1 rad.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ConvergenceWarning fails the test
        svc = LinearSVC(C=1e6, loss="hinge", dual=True, fit_intercept=False, tol=1e-8, max_iter=100_000,
                        random_state=0).fit(ds.X, ds.y)
    assert r.lambda_.max() < 1e6  # C does not bind
    assert _angle(svc.coef_.ravel(), r.u_bar) < 1e-4


# ------------------------------------------------------------------ KKT and optimality

def _kkt_sets():
    yield "toy", D.toy().Z
    for seed, (n, d) in enumerate([(30, 2), (50, 4), (200, 10), (40, 40)]):
        yield f"gauss-{n}-{d}", D.gaussian_separable(n, d, seed=seed).Z
    yield "iris-setosa", D.sklearn_task("iris-setosa").Z
    yield "digits-0-1", D.sklearn_task("digits-0-1").Z


@pytest.mark.parametrize("name, Z", list(_kkt_sets()), ids=[k for k, _ in _kkt_sets()])
def test_kkt_conditions(name, Z):
    r = max_margin(Z)
    w, lam = r.w, r.lambda_
    s = Z @ w
    wn = np.linalg.norm(w)
    assert np.linalg.norm(w - Z.T @ lam) <= 1e-11 * wn                       # stationarity
    assert (lam >= 0).all()                                                  # dual feasibility
    assert s.min() >= 1 - 1e-12                                              # primal feasibility
    assert np.abs(lam * (s - 1)).max() <= 1e-11 * lam.max()                  # complementary slackness
    assert abs(lam.sum() - wn ** 2) <= 1e-11 * wn ** 2                       # zero duality gap
    off = np.setdiff1d(np.arange(len(s)), r.support)
    assert (lam[off] == 0).all() and (s[off] > 1 + r.support_tol).all()
    assert (np.abs(s[r.support] - 1) <= r.support_tol).all()
    assert r.gamma == pytest.approx(1 / wn) and r.gamma == pytest.approx((Z @ r.u_bar).min(), rel=1e-12)


def test_no_nearby_direction_has_a_larger_margin():
    rng = np.random.default_rng(0)
    for seed in range(3):
        Z = D.gaussian_separable(60, 4, seed=seed).Z
        r = max_margin(Z)
        for scale in (1e-6, 1e-3, 1e-1):
            U = r.u_bar + scale * rng.standard_normal((2000, 4))
            U /= np.linalg.norm(U, axis=1, keepdims=True)
            assert (U @ Z.T).min(axis=1).max() <= r.gamma * (1 + 1e-12)


# ------------------------------------------------------------------ Assumption 3, alpha and the dual criterion

def test_alpha_matches_bruteforce_and_dual_criterion_on_random_generic_sets():
    for seed in range(6):
        ds = D.gaussian_separable(60, 3, seed=seed, margin_gap=0.05)
        r = max_margin(ds)
        assert r.n_support == 3 and r.assumption3  # generic: |S| = d
        bf = _alpha_bruteforce_3d(ds.Z, r.u_bar, r.support)
        assert r.alpha <= bf + 1e-12 and bf - r.alpha <= 1e-7, (seed, r.alpha, bf)
        assert (r.alpha > 0) == r.dual_positive
        assert r.dual_positive  # generic data: all duals > 0


@pytest.mark.parametrize("d", [4, 5, 6])
def test_alpha_simplex_formula_agrees_with_hull_facets(d):
    from scipy.spatial import ConvexHull

    rng = np.random.default_rng(d)
    for seed in range(4):
        ds = D.gaussian_separable(80, d, seed=100 * d + seed, margin_gap=0.05)
        r = max_margin(ds)
        assert r.n_support == d and r.assumption3 and r.dual_positive and r.alpha > 0
        Q = ds.Z[r.support] @ _perp_basis(r.u_bar)
        hull_alpha = (-ConvexHull(Q).equations[:, -1]).min()
        assert r.alpha == pytest.approx(hull_alpha, rel=1e-9)
        xi = rng.standard_normal((20000, d - 1)) @ _perp_basis(r.u_bar).T
        xi /= np.linalg.norm(xi, axis=1, keepdims=True)
        assert (xi @ ds.Z[r.support].T).max(axis=1).min() >= r.alpha - 1e-12  # alpha is a lower bound


@pytest.mark.parametrize("kind, positive", [("interior", True), ("extra", True), ("boundary", False),
                                            ("nonspanning", False)])
def test_alpha_positive_iff_dual_criterion_on_constructed_sets(kind, positive):
    rng = np.random.default_rng(7)
    for d in (2, 3, 4, 5):
        if kind == "nonspanning" and d == 2:
            continue
        for _ in range(3):
            Z, u, gamma, S = _constructed(d, kind, rng)
            r = max_margin(Z)
            assert _angle(r.u_bar, u) < 1e-9 and r.gamma == pytest.approx(gamma, rel=1e-9)
            assert r.support.tolist() == S.tolist(), (kind, d)
            assert r.dual_positive == positive and (r.alpha > 0) == positive, (kind, d, r.alpha, r.alpha_method)
            assert r.alpha >= 0
            if not positive:
                assert r.alpha == 0.0
            assert r.assumption3 == (kind != "nonspanning")
            if d == 3:
                bf = _alpha_bruteforce_3d(Z, u, S)
                assert r.alpha <= bf + 1e-12 and bf - r.alpha <= 1e-7, (kind, bf, r.alpha)
            if kind == "boundary":
                assert r.lambda_[S[-1]] <= 1e-9 * r.lambda_.max()  # the margin point with lambda = 0
                assert r.dual_min_share <= 1e-7


def test_relaxed_assumption3_when_the_data_span_a_subspace():
    rng = np.random.default_rng(3)
    Z3, u3, gamma, S = _constructed(3, "interior", rng)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 3)))  # embed R^3 isometrically in R^5
    r3, r5 = max_margin(Z3), max_margin(Z3 @ Q.T)
    assert r5.rank_data == 3 and not r5.assumption3 and r5.assumption3_relaxed
    assert r5.dual_positive_relaxed and not r5.dual_positive
    assert r5.alpha == 0.0 and r5.alpha_relaxed == pytest.approx(r3.alpha, rel=1e-9)
    assert r5.gamma == pytest.approx(r3.gamma, rel=1e-12)


def test_d1():
    r = max_margin(np.array([[0.5], [1.0], [0.2]]))
    assert r.u_bar.tolist() == [1.0] and r.gamma == pytest.approx(0.2) and r.support.tolist() == [2]
    assert r.assumption3 and r.dual_positive and r.alpha == math.inf
    assert lemma4_threshold("exp", 3, r.alpha) == 1.0 and lemma4_threshold("logistic", 3, r.alpha) == 0.0
    r = max_margin(np.array([[-0.5], [-1.0]]))
    assert r.u_bar.tolist() == [-1.0] and r.gamma == pytest.approx(0.5)


# ------------------------------------------------------------------ non-separable and tiny margins

def _tiny(g, rng):
    """d = 3, u_bar = e1, three support points with <e1, z> = g around 0, far points at >= 0.2."""
    P = np.array([[0.5, 0.3], [-0.4, 0.2], [0.1, -0.6]])
    far = rng.standard_normal((20, 3))
    far[:, 0] = np.abs(far[:, 0]) + 0.2
    Z = np.vstack([np.hstack([np.full((3, 1), g), P]), far])
    s = 1.0 / np.linalg.norm(Z, axis=1).max()
    return Z * s, g * s


@pytest.mark.parametrize("g", [1e-2, 1e-4, 1e-6])
def test_tiny_margins_are_solved_exactly(g):
    Z, gamma = _tiny(g, np.random.default_rng(0))
    r = max_margin(Z)
    assert _angle(r.u_bar, np.array([1.0, 0.0, 0.0])) < 1e-12
    assert r.gamma == pytest.approx(gamma, rel=1e-9) and r.support.tolist() == [0, 1, 2]
    assert r.alpha > 0 and r.dual_positive


@pytest.mark.parametrize("make", [
    lambda: D.flip_labels(D.toy(), indices=[0]),
    lambda: D.flip_labels(D.gaussian_separable(60, 4, seed=0), 0.1, seed=0),
    lambda: D.sklearn_task("iris-versicolor-virginica"),
    lambda: np.array([[1.0, 0.0], [-1.0, 0.1], [0.0, -1.0]]),
    lambda: np.array([[0.5], [-1.0]]),
    lambda: np.array([[1.0, 0.0], [-1.0, 0.0]]),              # margin exactly 0
    lambda: _tiny(0.0, np.random.default_rng(1))[0],          # 0 inside conv of the z's: margin 0
    lambda: _tiny(-1e-9, np.random.default_rng(1))[0],        # just not separable
    lambda: _tiny(-1e-3, np.random.default_rng(1))[0],
])
def test_non_separable_data_raise_a_clear_error(make):
    data = make()
    with pytest.raises(ValueError, match=r"^data are not linearly separable through the origin"):
        max_margin(data)
    assert not is_separable(data)


def test_zero_point_named_in_the_error():
    with pytest.raises(ValueError, match=r"not linearly separable.*z_1 = 0"):
        max_margin(np.array([[1.0, 0.0], [0.0, 0.0]]))


@pytest.mark.parametrize("Z, pattern", [
    (np.array([[1.0, np.nan]]), r"NaN or inf"),
    (np.array([1.0, 2.0]), r"2-D"),
    (np.zeros((0, 2)), r"non-empty"),
])
def test_bad_input(Z, pattern):
    with pytest.raises(ValueError, match=pattern):
        max_margin(Z)


# ------------------------------------------------------------------ Lemma 4

def test_lemma4_threshold_values():
    assert lemma4_threshold("exp", 16, 0.5) == pytest.approx(1 + math.log(16) / 0.5)
    assert lemma4_threshold("logistic", 16, 0.5) == pytest.approx(32 / (math.e * 0.5))
    assert lemma4_threshold(L.get("exp"), 5, 0.1) == pytest.approx(1 + math.log(5) / 0.1)
    assert lemma4_threshold("exp", 5, 0.0) == math.inf
    with pytest.raises(ValueError, match=r"'exp' and 'logistic'"):
        lemma4_threshold("poly", 5, 0.1)
    with pytest.raises(ValueError, match=r"positive integer"):
        lemma4_threshold("exp", 0, 0.1)
    with pytest.raises(ValueError, match=r"alpha must be a number"):
        lemma4_threshold("exp", 3, float("nan"))


def _perp_grad_sign(Z, u, loss, a, r, xi):
    """<Pi_perp w, grad R(w)> / R(w) for w = a u + r xi (rows), via gdalign.losses (stable)."""
    w = a[:, None] * u + r[:, None] * xi
    s = torch.as_tensor(w @ Z.T)
    _, c = L.risk_grad_over_risk(L.get(loss), s)  # grad R / R = sum_i c_i z_i, c_i = l'(s_i)/(n R)
    pw = r[:, None] * xi
    return (c.numpy() * (pw @ Z.T)).sum(axis=1)


def _lemma4_sets():
    yield "toy", D.toy()
    yield "gauss-n40-d3", D.load_stored("gaussian-n40-d3")
    yield "gauss-n30-d4", D.gaussian_separable(30, 4, seed=11, margin_gap=0.1)


@pytest.mark.parametrize("loss", ["exp", "logistic"])
@pytest.mark.parametrize("name, ds", list(_lemma4_sets()), ids=[k for k, _ in _lemma4_sets()])
def test_lemma4_sign_above_threshold_and_not_below(name, ds, loss):
    Z = ds.Z
    r = max_margin(ds)
    assert r.alpha > 0
    thr = lemma4_threshold(loss, ds.n, r.alpha)
    rng = np.random.default_rng(42)
    B = 4000
    xi = rng.standard_normal((B, ds.d))
    xi -= np.outer(xi @ r.u_bar, r.u_bar)
    xi /= np.linalg.norm(xi, axis=1, keepdims=True)
    # <w, u_bar> >= 0: zero for a quarter of the samples, else spread over many scales
    a = np.where(rng.random(B) < 0.25, 0.0, thr * 10.0 ** rng.uniform(-4, 1.5, B))
    # above the threshold: some just above it, the rest spread out
    above = thr * np.where(rng.random(B) < 0.3, 1 + 1e-9, 1 + rng.exponential(1.0, B))
    v = _perp_grad_sign(Z, r.u_bar, loss, a, above, xi)
    assert np.isfinite(v).all()
    assert (v >= -1e-12 * above).all(), (name, loss, v.min())
    # below the threshold the sign condition fails for some samples, and the sampler finds them
    a_small = np.where(rng.random(B) < 0.5, 0.0, rng.uniform(0, 1.0, B))
    below = thr * 10.0 ** rng.uniform(-4, 0, B)  # log-uniform over four decades below the threshold
    vb = _perp_grad_sign(Z, r.u_bar, loss, a_small, below, xi)
    assert (vb < 0).sum() >= 10, (name, loss)
    # the stable grad/R agrees with (1/n) sum_i l'(<w, z_i>) z_i / R on moderate samples
    w = a_small[:50, None] * r.u_bar + below[:50, None] * xi[:50]
    s = torch.as_tensor(w @ Z.T)
    lf = L.get(loss)
    grad = (lf.deriv(s).numpy() @ Z) / ds.n
    Rw = lf.value(s).numpy().mean(axis=1)
    pw = below[:50, None] * xi[:50]
    np.testing.assert_allclose((pw * grad).sum(axis=1) / Rw, vb[:50], rtol=1e-9, atol=1e-12)


def test_alpha_beyond_max_hull_dim_is_nan_but_the_sign_is_known():
    rng = np.random.default_rng(5)
    Z, u, gamma, S = _constructed(8, "extra", rng)  # |S| = d + 1 = 9 in u_bar^perp of dimension 7
    r = max_margin(Z, max_hull_dim=6)
    assert math.isnan(r.alpha) and r.alpha_method.startswith("unavailable") and r.dual_positive
    full = max_margin(Z)  # dimension 7 <= the default 8: facets of the hull
    assert full.alpha > 0 and full.alpha_method.startswith("convex hull")
    assert lemma4_threshold("exp", len(Z), full.alpha) < math.inf
