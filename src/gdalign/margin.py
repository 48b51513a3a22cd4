"""The exact max-margin direction through the origin, its support set, Assumption 3 and alpha.

:func:`max_margin` solves the hard-margin SVM with no intercept,

    min_w  (1/2) ||w||^2   subject to   <w, z_i> >= 1  for every i,

with ``quadprog.solve_qp`` (the Goldfarb-Idnani dual active-set method: exact up to
rounding, no iteration tolerance), then verifies the answer (feasibility, w = sum_i
lambda_i z_i, lambda >= 0, complementary slackness, zero duality gap). From w_hat:

* u_bar = w_hat / ||w_hat||, gamma = 1 / ||w_hat|| = min_i <u_bar, z_i>;
* the support set S = {i : <w_hat, z_i> <= 1 + tol} (every point on the margin; this
  includes margin points whose dual variable happens to be 0);
* Assumption 3 (rank z_S = d) and its relaxation (rank z_S = rank Z);
* the dual-positivity criterion of Lemma 3 ([D] in the paper's restatement): S spans
  and some optimal dual solution is strictly positive on S;
* alpha of Lemma 3, alpha = min over unit xi in u_bar^perp of max_{i in S} <xi, z_i>.

alpha, geometrically. Project the support points onto u_bar^perp: p_i = Pi_perp z_i.
For a unit xi in u_bar^perp, max_{i in S} <xi, z_i> = max_i <xi, p_i> = h_P(xi), the
support function of P = conv{p_i : i in S}. The KKT conditions give
0 = Pi_perp w_hat = sum_i lambda_i p_i with lambda >= 0, so 0 is always in P and
alpha >= 0. If 0 is in the interior of P (within u_bar^perp), min over unit xi of
h_P(xi) is the distance from 0 to the boundary of P, i.e. the smallest facet offset;
otherwise (0 on the boundary, or P not full-dimensional, e.g. |S| < d) alpha = 0.
So alpha > 0 exactly when the dual-positivity criterion holds. We compute it exactly:

* d = 1 (or rank 1): u_bar^perp is {0}; alpha = +inf (the minimum over an empty set);
* u_bar^perp of dimension 1 (d = 2): the two unit vectors +-e, alpha = min(max_S <e, z_i>,
  max_S <-e, z_i>);
* |S| = dim + 1 distinct points forming a simplex: the barycentric formula (the distance
  from 0 to the facet opposite vertex j is mu_j(0) / ||grad mu_j||);
* otherwise the facets of scipy.spatial.ConvexHull (Qhull) in u_bar^perp coordinates,
  when that dimension is at most ``max_hull_dim`` (default 8). Beyond it, facet
  enumeration is infeasible in general and alpha is reported as NaN
  (``alpha_method`` says so); its sign is still given by the dual-positivity criterion.

``alpha`` is Lemma 3's alpha in R^d: it is 0 when the data do not span R^d (a unit xi
orthogonal to every z_i gives max 0). ``alpha_relaxed`` is the same quantity within
span{z_i} (Assumption 3's relaxation: the gradient never leaves that subspace, and
Lemma 4 holds there with this alpha). Both coincide when rank Z = d.

Example
-------
>>> from gdalign.data import toy
>>> r = max_margin(toy())
>>> [round(float(v), 12) for v in r.u_bar], r.support.tolist(), r.assumption3, r.dual_positive
([0.707106781187, 0.707106781187], [0, 1, 2, 3], True, True)
>>> round(lemma4_threshold("exp", 16, r.alpha), 6) > 1
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["MaxMarginResult", "max_margin", "is_separable", "lemma4_threshold", "alpha_direct_2d"]

NOT_SEPARABLE = "data are not linearly separable through the origin"


@dataclass(frozen=True, eq=False)
class MaxMarginResult:
    """The hard-margin SVM through the origin and the quantities of Assumption 3 / Lemma 3.

    Attributes
    ----------
    w : ndarray of shape (d,)
        w_hat, the minimiser of ||w||^2 / 2 subject to <w, z_i> >= 1.
    u_bar : ndarray of shape (d,)
        w_hat / ||w_hat||, the max-margin direction.
    gamma : float
        1 / ||w_hat|| = min_i <u_bar, z_i>.
    lambda_ : ndarray of shape (n,)
        Dual variables (quadprog's Lagrange multipliers): w_hat = sum_i lambda_i z_i,
        lambda >= 0, lambda_i (<w_hat, z_i> - 1) = 0. For exact duplicates among the
        support points the group's total is split equally (still an optimal dual).
    support : ndarray of int, shape (|S|,)
        S = {i : <w_hat, z_i> - 1 <= support_tol}, sorted.
    support_tol : float
        The tolerance used: max(tol, 1e3 * eps * ||w_hat|| * max_i ||z_i||).
    rank_data, rank_support : int
        Numerical ranks (singular values above 1e-9 times the largest) of Z and z_S.
    assumption3 : bool
        rank z_S = d (Assumption 3).
    assumption3_relaxed : bool
        rank z_S = rank Z (the support vectors span the same subspace as all z_i).
    dual_positive, dual_positive_relaxed : bool
        The criterion of Lemma 3: Assumption 3 (resp. its relaxation) holds and some
        optimal dual solution is strictly positive on every (distinct) point of S.
    dual_min_share : float
        max over optimal duals c (normalised to sum 1 on the distinct support points)
        of |S_distinct| * min_j c_j, in [0, 1] up to rounding; > 0 iff such a strictly
        positive dual exists. (1 means all support points carry equal weight.)
    alpha, alpha_relaxed : float
        alpha of Lemma 3 in R^d and within span{z_i} (see the module docstring).
    alpha_method : str
        How alpha_relaxed was computed.
    iterations : int
        quadprog's iteration count.
    """

    w: np.ndarray
    u_bar: np.ndarray
    gamma: float
    lambda_: np.ndarray
    support: np.ndarray
    support_tol: float
    rank_data: int
    rank_support: int
    assumption3: bool
    assumption3_relaxed: bool
    dual_positive: bool
    dual_positive_relaxed: bool
    dual_min_share: float
    alpha: float
    alpha_relaxed: float
    alpha_method: str
    iterations: int

    def __repr__(self) -> str:
        return (f"MaxMarginResult(d={self.u_bar.size}, gamma={self.gamma:.6g}, n_support={self.n_support}, "
                f"assumption3={self.assumption3}, dual_positive={self.dual_positive}, alpha={self.alpha:.6g})")

    @property
    def n_support(self) -> int:
        return int(self.support.size)

    def summary(self) -> dict:
        """The scalar facts, for tables."""
        return {"gamma": self.gamma, "n_support": self.n_support, "rank_data": self.rank_data,
                "rank_support": self.rank_support, "assumption3": self.assumption3,
                "assumption3_relaxed": self.assumption3_relaxed, "dual_positive": self.dual_positive,
                "alpha": self.alpha, "alpha_relaxed": self.alpha_relaxed, "alpha_method": self.alpha_method}


def _as_Z(data) -> np.ndarray:
    Z = getattr(data, "Z", data)
    try:
        Z = np.array(Z, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Z must be a numeric array of shape (n, d) ({e})") from None
    if Z.ndim != 2 or Z.shape[0] == 0 or Z.shape[1] == 0:
        raise ValueError(f"Z must be a non-empty 2-D array of shape (n, d), got shape {Z.shape}")
    if not np.isfinite(Z).all():
        raise ValueError("Z contains NaN or inf")
    return Z


def _rank(A: np.ndarray, rtol: float = 1e-9) -> int:
    if A.size == 0:
        return 0
    s = np.linalg.svd(A, compute_uv=False)
    return int((s > rtol * s[0]).sum()) if s[0] > 0 else 0


def _orth(A: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Orthonormal basis (columns) of the column space of A."""
    if A.size == 0:
        return np.zeros((A.shape[0], 0))
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return np.zeros((A.shape[0], 0))
    return U[:, s > rtol * s[0]]


def _distinct(rows: np.ndarray, atol: float) -> list[list[int]]:
    """Groups of (near-)identical rows, as lists of positions."""
    groups: list[list[int]] = []
    reps: list[np.ndarray] = []
    for i, r in enumerate(rows):
        for g, rep in zip(groups, reps):
            if np.abs(r - rep).max() <= atol:
                g.append(i)
                break
        else:
            groups.append([i])
            reps.append(r)
    return groups


def alpha_direct_2d(u_bar, Z_support) -> float:
    """alpha of Lemma 3 in d = 2, from the two unit vectors orthogonal to u_bar.

    alpha = min over xi in {e, -e}, e = (-u_2, u_1), of max_{i in S} <xi, z_i>.

    Parameters
    ----------
    u_bar : array-like of shape (2,)
    Z_support : array-like of shape (|S|, 2)
    """
    u = np.asarray(u_bar, dtype=float)
    Zs = np.asarray(Z_support, dtype=float)
    if u.shape != (2,) or Zs.ndim != 2 or Zs.shape[1] != 2 or Zs.shape[0] == 0:
        raise ValueError("alpha_direct_2d needs u_bar of shape (2,) and support points of shape (k, 2), k >= 1")
    e = np.array([-u[1], u[0]]) / np.linalg.norm(u)
    t = Zs @ e
    return float(min(t.max(), (-t).max()))


def _alpha_polytope(Q: np.ndarray, max_hull_dim: int) -> tuple[float, str]:
    """min over unit xi of max_i <xi, q_i> for points Q (k, m) whose hull contains 0."""
    k, m = Q.shape
    if m == 0:
        return math.inf, "u_bar^perp is {0}: alpha = +inf (minimum over an empty set)"
    if _rank(Q) < m:
        return 0.0, "support points do not span u_bar^perp: alpha = 0"
    if m == 1:
        t = Q[:, 0]
        return float(min(t.max(), (-t).max())), "direct (the two unit vectors orthogonal to u_bar)"
    if k == m + 1:
        M = np.vstack([Q.T, np.ones(k)])  # (m+1, m+1): mu(x) = M^{-1} [x; 1]
        Minv = np.linalg.inv(M)
        mu0 = Minv[:, -1]
        grads = np.linalg.norm(Minv[:, :-1], axis=1)
        return float((mu0 / grads).min()), "simplex (barycentric coordinates of 0)"
    if m > max_hull_dim:
        return math.nan, (f"unavailable: |S| = {k} > dim + 1 in dimension {m} > max_hull_dim = {max_hull_dim} "
                          f"(facet enumeration infeasible); the sign of alpha is given by dual_positive")
    from scipy.spatial import ConvexHull

    from scipy.spatial import QhullError

    try:
        hull = ConvexHull(Q)
    except QhullError as e:  # pragma: no cover - rank was checked above
        return math.nan, f"unavailable: Qhull failed ({str(e).splitlines()[0]})"
    # equations: normal . x + offset <= 0 inside, unit normals: distance of 0 = -offset
    return float((-hull.equations[:, -1]).min()), f"convex hull (Qhull, {len(hull.equations)} facets)"


def _positive_dual(Zd: np.ndarray, w: np.ndarray, gamma: float) -> float:
    """max over c >= 0 with sum_j c_j z_j = w of k * min_j c_j, c normalised to sum 1."""
    k = Zd.shape[0]
    # <u_bar, z_j> = gamma on S, so sum_j c_j = <u_bar, w>/gamma = 1/gamma^2 for every dual c.
    target = w * gamma * gamma  # then sum c = 1
    if _rank(Zd) == k:  # linearly independent: the dual is unique
        c, *_ = np.linalg.lstsq(Zd.T, target, rcond=None)
        return float(k * c.min())
    from scipy.optimize import linprog

    # variables (c_1..c_k, t): maximise t s.t. Zd^T c = target, sum c = 1, c_j - t >= 0
    A_eq = np.vstack([np.hstack([Zd.T, np.zeros((Zd.shape[1], 1))]), np.hstack([np.ones(k), [0.0]])])
    b_eq = np.concatenate([target, [1.0]])
    A_ub = np.hstack([-np.eye(k), np.ones((k, 1))])
    res = linprog(np.concatenate([np.zeros(k), [-1.0]]), A_ub=A_ub, b_ub=np.zeros(k), A_eq=A_eq, b_eq=b_eq,
                  bounds=[(0, None)] * k + [(None, None)], method="highs")
    if res.status != 0:
        raise RuntimeError(f"max_margin: the dual-positivity LP failed ({res.message})")
    return float(k * res.x[-1])


def max_margin(data, *, tol: float = 1e-9, positive_tol: float = 1e-7, alpha_atol: float = 1e-10,
               max_hull_dim: int = 8) -> MaxMarginResult:
    """The hard-margin SVM through the origin (no intercept), solved exactly by quadprog.

    Parameters
    ----------
    data : Dataset or array-like of shape (n, d)
        A :class:`gdalign.data.Dataset` (its ``Z`` is used) or the matrix Z with rows
        z_i = y_i x_i.
    tol : float, default 1e-9
        Support tolerance on the normalised margins: i is in S when
        <w_hat, z_i> = <u_bar, z_i>/gamma <= 1 + tol (raised to the rounding level
        1e3 * eps * ||w_hat|| * max ||z_i|| for tiny margins). Duplicate support points
        (equal to 1e-12 * max ||z_i|| in every coordinate) are grouped: their dual total is
        split equally, and alpha and the dual criterion use one point per group.
    positive_tol : float, default 1e-7
        The dual-positivity criterion requires ``dual_min_share > positive_tol``.
    alpha_atol : float, default 1e-10
        |alpha| below ``alpha_atol * max ||z_i||`` (rounding level) is reported as 0.
    max_hull_dim : int, default 8
        Largest dimension of u_bar^perp in which Qhull facet enumeration is attempted.

    Returns
    -------
    MaxMarginResult

    Raises
    ------
    ValueError
        "data are not linearly separable through the origin" (with the reason) when no
        w has <w, z_i> > 0 for all i -- detected by quadprog (inconsistent constraints)
        and by checking the returned solution. Margins below roughly 1e-8 (relative to
        max ||z_i||) in badly conditioned configurations cannot be told apart from 0 in
        float64 and are reported as not separable.
    RuntimeError
        If the solver's answer fails verification (never silently returned).

    Examples
    --------
    >>> import numpy as np
    >>> r = max_margin(np.array([[1.0, 0.2], [0.6, -0.5], [0.9, 0.9]]))
    >>> r.support.tolist(), round(r.gamma, 6)
    ([1, 2], 0.691446)
    >>> max_margin(np.array([[1.0, 0.0], [-1.0, 0.1], [0.0, -1.0]]))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    ValueError: data are not linearly separable through the origin (...)
    """
    import quadprog

    Z = _as_Z(data)
    n, d = Z.shape
    norms = np.linalg.norm(Z, axis=1)
    zmax = float(norms.max())
    if zmax == 0.0 or (norms == 0).any():
        i = int(np.argmin(norms))
        raise ValueError(f"{NOT_SEPARABLE}: z_{i} = 0 (a zero input has margin 0 in every direction)")
    try:
        w, _, _, iters, lam, _ = quadprog.solve_qp(np.eye(d), np.zeros(d), np.ascontiguousarray(Z.T),
                                                   np.ones(n), 0)
    except ValueError as e:
        if "inconsistent" in str(e):
            raise ValueError(f"{NOT_SEPARABLE} (quadprog: the constraints <w, z_i> >= 1 are inconsistent)") from None
        raise
    eps = np.finfo(float).eps
    wn = float(np.linalg.norm(w))
    s = Z @ w
    if not np.isfinite(w).all() or wn == 0.0:
        raise RuntimeError("max_margin: quadprog returned a non-finite or zero solution")
    u = w / wn
    margins = Z @ u
    round_s = 1e3 * eps * wn * zmax  # rounding level of <w, z_i>
    if margins.min() <= 0.0 or s.min() < 1.0 - max(1e-9, round_s):
        raise ValueError(f"{NOT_SEPARABLE} (the solver's w has min_i <w, z_i> = {s.min():.3g} < 1)")
    lam = np.asarray(lam, dtype=float)
    if lam.min() < -1e-12 * max(lam.max(), 1.0):
        raise RuntimeError(f"max_margin: quadprog returned a negative dual variable ({lam.min():.3g})")
    lam = np.maximum(lam, 0.0)  # clear rounding-level negatives only
    # verification: stationarity, dual feasibility, complementary slackness, zero duality gap
    resid = np.linalg.norm(w - Z.T @ lam)
    slack = np.abs(lam * (s - 1.0)).max() * (1.0 / wn ** 2)
    gap = abs(lam.sum() - wn ** 2) / wn ** 2
    if resid > 1e-8 * wn or slack > 1e-8 or gap > 1e-8:
        raise RuntimeError(f"max_margin: quadprog's answer failed verification (|w - Z^T lambda| = {resid:.2e}, "
                           f"slackness {slack:.2e}, duality gap {gap:.2e})")
    gamma = 1.0 / wn
    support_tol = max(tol, round_s)
    S = np.flatnonzero(s - 1.0 <= support_tol)
    if (lam[np.setdiff1d(np.arange(n), S)] > 1e-9 * lam.max()).any():
        raise RuntimeError("max_margin: a point off the margin carries a dual variable (verification failed)")
    # duplicates among the support points: split each group's dual total equally
    groups = _distinct(Z[S], atol=1e-12 * zmax)
    for g in groups:
        if len(g) > 1:
            idx = S[g]
            lam[idx] = lam[idx].sum() / len(g)
    reps = S[[g[0] for g in groups]]
    Zd = Z[reps]

    U = _orth(Z.T)  # (d, rank_data): orthonormal basis of span{z_i}
    rank_data = U.shape[1]
    rank_support = _rank(Z[S])
    a3 = rank_support == d
    a3r = rank_support == rank_data
    share = _positive_dual(Zd, w, gamma)
    pos = share > positive_tol
    # alpha within span{z_i}: coordinates of Pi_perp z_j in an orthonormal basis of u_bar^perp there
    B = _orth(U - np.outer(u, u @ U)) if U.shape[1] > 1 else np.zeros((d, 0))
    B = B[:, : max(rank_data - 1, 0)]
    if rank_data == 2 and d == 2:
        alpha_rel = alpha_direct_2d(u, Zd)
        method = "direct (the two unit vectors orthogonal to u_bar)"
    else:
        alpha_rel, method = _alpha_polytope(Zd @ B, max_hull_dim)
    if math.isfinite(alpha_rel) and abs(alpha_rel) <= alpha_atol * zmax:
        alpha_rel = 0.0
    alpha = alpha_rel if rank_data == d else 0.0
    return MaxMarginResult(w=w, u_bar=u, gamma=gamma, lambda_=lam, support=S, support_tol=support_tol,
                           rank_data=rank_data, rank_support=rank_support, assumption3=bool(a3),
                           assumption3_relaxed=bool(a3r), dual_positive=bool(a3 and pos),
                           dual_positive_relaxed=bool(a3r and pos), dual_min_share=share, alpha=alpha,
                           alpha_relaxed=alpha_rel, alpha_method=method, iterations=int(iters[0]))


def is_separable(data) -> bool:
    """Whether some w has <w, z_i> > 0 for every i (decided by :func:`max_margin`).

    Example
    -------
    >>> import numpy as np
    >>> is_separable(np.array([[1.0, 0.0], [0.0, 1.0]])), is_separable(np.array([[1.0], [-1.0]]))
    (True, False)
    """
    try:
        max_margin(data)
        return True
    except ValueError as e:
        if str(e).startswith(NOT_SEPARABLE):
            return False
        raise


def lemma4_threshold(loss_name, n: int, alpha: float) -> float:
    """Lemma 4's threshold on ||Pi_perp w|| (beyond it <Pi_perp w, grad R(w)> >= 0).

    ``1 + ln(n)/alpha`` for the exponential loss, ``2n/(e alpha)`` for the logistic loss;
    +inf when alpha <= 0 (the lemma then gives no threshold), and the alpha -> inf limit
    (1, resp. 0) when alpha = +inf (d = 1: u_bar^perp = {0}).

    Parameters
    ----------
    loss_name : {"exp", "logistic"} or a gdalign.losses.Loss of those kinds
    n : int >= 1
        Number of data points.
    alpha : float
        alpha of Lemma 3 (``MaxMarginResult.alpha`` or ``alpha_relaxed``).

    Example
    -------
    >>> round(lemma4_threshold("exp", 16, 0.5), 6), round(lemma4_threshold("logistic", 16, 0.5), 6)
    (6.545177, 23.544284)
    """
    name = getattr(loss_name, "name", loss_name)
    if name not in ("exp", "logistic"):
        raise ValueError(f"Lemma 4 is stated for the 'exp' and 'logistic' losses, not {name!r}")
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)) or math.isnan(alpha):
        raise ValueError(f"alpha must be a number, got {alpha!r}")
    if alpha <= 0:
        return math.inf
    if name == "exp":
        return 1.0 + math.log(n) / alpha
    return 2.0 * n / (math.e * alpha)
