"""Deep linear networks, batched over a leading dimension of seeds or configurations.

A network of depth L is a list of L tensors ``W[k-1]`` = W_k of shape (B, d_k, d_{k-1}),
k = 1..L, with d_0 = d the input dimension and d_L = 1 (the paper's scalar output;
d_L > 1 is allowed for the multi-output contrast). No biases, no activations. Row b of
every tensor is one network, so B runs advance in one tensor computation.

The end-to-end map is P = W_L ... W_1 (shape (B, d_L, d)); for d_L = 1 the paper's
w_prod = P^T. Gradients are closed form (no autograd): with M = dR/dP,

    dR/dW_k = (W_L ... W_{k+1})^T  M  (W_{k-1} ... W_1)^T,

computed as two chains of batched products. For d_L = 1 each chain carries row vectors,
so a gradient costs O(sum_k d_k d_{k-1}) per network.

Example
-------
>>> import torch
>>> from gdalign.data import toy
>>> from gdalign import losses
>>> ds = toy()
>>> net = init_network([2, 5, 4, 3, 1], "small", seeds=[0, 1], data=ds, loss="logistic")
>>> [tuple(w.shape) for w in net]
[(2, 5, 2), (2, 4, 5), (2, 3, 4), (2, 1, 3)]
>>> bool(assumption2(net, ds, "logistic").all())
True
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from . import losses as _losses

Weights = list  # list[torch.Tensor], W_k of shape (B, d_k, d_{k-1})

INITS = ("zero_first", "small", "balanced", "large", "explicit")
DEFAULT_DTYPE = torch.float64


def _as_data_tensor(data, dtype, device) -> torch.Tensor:
    """Z (n, d) as a tensor: accepts a Dataset (uses .Z), an array or a tensor."""
    Z = getattr(data, "Z", data)
    return torch.as_tensor(Z, dtype=dtype, device=device)


def widths_of(W: Weights) -> list[int]:
    """[d_0, d_1, ..., d_L] of a network."""
    return [W[0].shape[2]] + [w.shape[1] for w in W]


def check_widths(widths: Sequence[int], name: str = "widths") -> list[int]:
    widths = list(widths)
    if len(widths) < 2:
        raise ValueError(f"{name} must list d_0 ... d_L (at least 2 entries), got {widths!r}")
    for i, w in enumerate(widths):
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise ValueError(f"{name}[{i}] must be a positive integer, got {w!r}")
    return widths


# --- forward quantities ------------------------------------------------------------------

def left_products(W: Weights) -> list[torch.Tensor]:
    """[L_0, ..., L_L] with L_k = W_L ... W_{k+1} of shape (B, d_L, d_k); L_L = I, L_0 = P."""
    B, dL = W[-1].shape[0], W[-1].shape[1]
    eye = torch.eye(dL, dtype=W[-1].dtype, device=W[-1].device).expand(B, dL, dL)
    out = [eye]
    for w in reversed(W):
        out.append(torch.bmm(out[-1], w))
    return out[::-1]


def end_to_end(W: Weights) -> torch.Tensor:
    """P = W_L ... W_1, shape (B, d_L, d)."""
    P = W[-1]
    for w in reversed(W[:-1]):
        P = torch.bmm(P, w)
    return P


def w_prod(W: Weights) -> torch.Tensor:
    """The paper's end-to-end predictor w_prod = (W_L ... W_1)^T for d_L = 1, shape (B, d)."""
    if W[-1].shape[1] != 1:
        raise ValueError(f"w_prod needs d_L = 1; this network has d_L = {W[-1].shape[1]}")
    return end_to_end(W)[:, 0, :]


def grad_factors(W: Weights, M: torch.Tensor, lefts: list[torch.Tensor] | None = None):
    """dR/dW_k = A_k^T N_k as factors [(A_k, N_k)]: A_k = W_L...W_{k+1} (B, d_L, d_k),
    N_k = M W_1^T ... W_{k-1}^T (B, d_L, d_{k-1}). For d_L = 1 they are two row vectors,
    so a gradient step or a norm never needs the (B, d_k, d_{k-1}) matrix itself."""
    lefts = left_products(W) if lefts is None else lefts
    out = []
    N = M
    for k, w in enumerate(W):
        out.append((lefts[k + 1], N))
        if k + 1 < len(W):
            N = torch.bmm(N, w.transpose(1, 2))
    return out


def binary_step_factors(W: Weights, ZT: torch.Tensor, Zn: torch.Tensor, loss, WT: list | None = None):
    """Hot path of gradient descent for d_L = 1: (R, [(A_k, N_k)]) with dR/dW_k = A_k^T N_k.

    ``ZT`` = Z^T (d, n), ``Zn`` = Z / n; ``WT`` = transposed views of ``W`` (valid while W is
    updated in place).
    The last layer's A is None (the identity). Works in the linear domain: R underflows to 0
    only past ln(1/R) ~ 745, which the caller detects. About 2L + 6 tensor operations.
    """
    L = len(W)
    WT = WT or [w.transpose(1, 2) for w in W]
    As = [None] * L
    a = W[-1]
    for k in range(L - 2, -1, -1):  # As[k] = W_L ... W_{k+2}
        As[k] = a
        a = torch.bmm(a, W[k])
    s = torch.mm(a[:, 0], ZT)  # margins <w_prod, z_i>, (B, n)
    v, dv = loss.value_and_deriv(s)
    R = v.mean(dim=1)
    N = torch.mm(dv, Zn).unsqueeze(1)  # dR/dP, (B, 1, d)
    out = []
    for k in range(L):
        out.append((As[k], N))
        if k + 1 < L:
            N = torch.bmm(N, WT[k])
    return R, out


_SEGMENTS: dict = {}


def _segment_matrix(sizes: tuple, dtype, device) -> torch.Tensor:
    """(sum(sizes), len(sizes)) 0/1 matrix whose column j sums segment j of a concatenated vector."""
    key = (sizes, dtype, str(device))
    if key not in _SEGMENTS:
        S = torch.zeros(sum(sizes), len(sizes), dtype=dtype, device=device)
        i = 0
        for j, m in enumerate(sizes):
            S[i:i + m, j] = 1.0
            i += m
        _SEGMENTS[key] = S
    return _SEGMENTS[key]


def binary_sq_norms(factors) -> torch.Tensor:
    """:func:`factor_sq_norms` for the row-vector factors of :func:`binary_step_factors`, (B, L).

    ||A_k^T N_k||_F^2 = ||A_k||^2 ||N_k||^2: every squared norm comes from one concatenation and
    one product with a segment-sum matrix (a handful of tensor operations whatever the depth).
    """
    As = [a for a, _ in factors if a is not None]  # layer L's A is the identity: norm 1
    Ns = [n for _, n in factors]
    B, L = Ns[0].shape[0], len(Ns)
    v = torch.cat(As + Ns, dim=2).view(B, -1)
    sizes = tuple(t.shape[2] for t in As + Ns)
    sq = (v * v) @ _segment_matrix(sizes, v.dtype, v.device)  # (B, (L-1) + L)
    a2, n2 = sq[:, :L - 1], sq[:, L - 1:]
    return torch.cat([a2 * n2[:, :L - 1], n2[:, L - 1:]], dim=1)


def layer_grads(W: Weights, M: torch.Tensor, lefts: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """dR/dW_k for k = 1..L from M = dR/dP (B, d_L, d), by the closed form above."""
    return [torch.bmm(A.transpose(1, 2), N) for A, N in grad_factors(W, M, lefts)]


def factor_sq_norms(factors) -> torch.Tensor:
    """||A_k^T N_k||_F^2 for every layer, (B, L): <A A^T, N N^T>_F, = ||A||^2 ||N||^2 when d_L = 1.

    A factor A = None stands for the identity (the last layer of :func:`binary_step_factors`).
    """
    out = []
    for A, N in factors:
        if N.shape[1] == 1:  # rank one: a product of two vector norms
            n2 = torch.linalg.vecdot(N, N)[:, 0]
            out.append(n2 if A is None else torch.linalg.vecdot(A, A)[:, 0] * n2)
        else:
            NN = torch.bmm(N, N.transpose(1, 2))
            out.append(NN.diagonal(dim1=1, dim2=2).sum(1) if A is None
                       else (torch.bmm(A, A.transpose(1, 2)) * NN).sum(dim=(1, 2)))
    return torch.stack(out, dim=1)


def margins(W: Weights, Z: torch.Tensor) -> torch.Tensor:
    """s_i = <w_prod, z_i> for every network, shape (B, n)."""
    return w_prod(W) @ Z.T


def risk_and_grads(W: Weights, data, loss, scaled: bool = False, factors: bool = False):
    """(ln R, R, [dR/dW_k]) for the binary risk R = (1/n) sum_i l(<w_prod, z_i>).

    With ``scaled=True`` the gradients are divided by R (the field of the
    time-reparametrised flow dW/ds = -grad R / R), computed stably at any risk.
    With ``factors=True`` the gradients come as :func:`grad_factors` pairs.
    Shapes: ln R and R (B,); gradient k (B, d_k, d_{k-1}).
    """
    loss = _losses.get(loss)
    Z = _as_data_tensor(data, W[0].dtype, W[0].device)
    lefts = left_products(W)
    P = lefts[0]
    if P.shape[1] != 1:
        raise ValueError("risk_and_grads is the binary (d_L = 1) risk; use multiclass_risk_and_grads for d_L > 1")
    s = P[:, 0, :] @ Z.T
    R = None
    if not scaled:  # plain gradients: the linear domain is exact unless R underflows
        R = loss.value(s).mean(dim=1)
        if bool((R > 0).all()):
            lr, c = torch.log(R), loss.deriv(s) / s.shape[1]
        else:
            R = None
    if R is None:
        lr, c = _losses.risk_grad_over_risk(loss, s)
        R = torch.exp(lr)
        if not scaled:
            c = c * R.unsqueeze(-1)
    M = (c @ Z).unsqueeze(1)  # (B, 1, d)
    return lr, R, (grad_factors if factors else layer_grads)(W, M, lefts)


def multiclass_risk_and_grads(W: Weights, X: torch.Tensor, labels: torch.Tensor, scaled: bool = False,
                              factors: bool = False):
    """Softmax cross-entropy risk of a d_L = K output network (the multi-output contrast).

    ``X`` (n, d) inputs, ``labels`` (n,) integers in [0, K). Returns (ln R, R, grads);
    per-sample losses are computed in the log domain, l_i = softplus(LSE_{j!=y}(o_j - o_y)).
    """
    P = end_to_end(W)  # (B, K, d)
    O = torch.einsum("bkd,nd->bnk", P, X)  # outputs (B, n, K)
    oy = O.gather(2, labels.view(1, -1, 1).expand(O.shape[0], -1, 1))
    diff = O - oy
    mask = torch.nn.functional.one_hot(labels, O.shape[2]).bool().unsqueeze(0)
    a = torch.logsumexp(diff.masked_fill(mask, -math.inf), dim=2)  # (B, n)
    logl = _losses._log_softplus_neg(-a)  # ln l_i
    lse = torch.logsumexp(logl, dim=1, keepdim=True)
    lr = lse.squeeze(1) - math.log(X.shape[0])
    R = torch.exp(lr)
    # dl_i/do = softmax(o_i) - e_{y_i}; weight by 1/(nR) (scaled) or 1/n
    dO = torch.softmax(O, dim=2) - mask.to(O.dtype)
    n = X.shape[0]
    w = (torch.exp(-lse) if scaled else torch.full_like(lse, 1.0 / n)).expand(-1, n)  # 1/(nR) or 1/n
    M = torch.einsum("bnk,bn,nd->bkd", dO, w, X)
    return lr, R, (grad_factors if factors else layer_grads)(W, M)


# --- initialisation --------------------------------------------------------------------

def _generators(seeds: Sequence[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def _randn(gens, shape, dtype) -> torch.Tensor:
    """(B, *shape) Gaussian, member b drawn from its own generator (seed-stable batching)."""
    return torch.stack([torch.randn(*shape, generator=g, dtype=dtype) for g in gens])


def _unit(gens, dim, dtype) -> torch.Tensor:
    v = _randn(gens, (dim,), dtype)
    return v / v.norm(dim=1, keepdim=True)


def init_network(widths: Sequence[int], scheme: str = "small", seeds: Sequence[int] = (0,), scale: float = 0.1,
                 data=None, loss=None, matrices: Sequence | None = None, dtype=DEFAULT_DTYPE,
                 device: str | torch.device = "cpu", sign_fix: bool = True, max_redraws: int = 100) -> Weights:
    """Initial weights for ``len(seeds)`` networks of the given widths [d_0, ..., d_L].

    Schemes (SPEC section 6, NB-1):

    * ``"zero_first"`` -- W_1 = 0, the other layers N(0, scale^2): satisfies Assumption 2
      whenever W_L...W_2 != 0 (the paper's Appendix A example).
    * ``"small"`` -- every layer N(0, scale^2); with ``sign_fix`` the sign of W_L is flipped
      where R(W(0)) > l(0) (for small weights one of +-w_prod lowers the risk).
    * ``"balanced"`` -- exactly balanced, D = 0: W_k = scale * u_k u_{k-1}^T with unit u_k,
      u_L = 1, so W_k W_k^T = W_{k+1}^T W_{k+1}. With ``sign_fix`` u_0 is oriented so that
      R(W(0)) <= l(0).
    * ``"large"`` -- unbalanced and large: layer k is N(0, (scale * (k + 1))^2); members that
      violate Assumption 2 even after the sign fix are redrawn from the same seed's stream.
    * ``"explicit"`` -- ``matrices`` = [W_1, ..., W_L] (each (d_k, d_{k-1}) or (B, d_k, d_{k-1})).

    Member b is drawn from its own generator seeded with ``seeds[b]``, so a seed gives the same
    network whatever batch it is in. ``data`` and ``loss`` are needed for the sign fix.
    Returns a list of L tensors (B, d_k, d_{k-1}) in ``dtype`` on ``device``.
    """
    if scheme not in INITS:
        raise ValueError(f"init scheme {scheme!r} is not known; choose one of {INITS}")
    if scheme == "explicit":
        if not matrices:
            raise ValueError("init scheme 'explicit' needs matrices=[W_1, ..., W_L]")
        W = [torch.as_tensor(m, dtype=dtype, device=device) for m in matrices]
        W = [w.unsqueeze(0) if w.dim() == 2 else w for w in W]
        B = max(w.shape[0] for w in W)
        W = [w.expand(B, -1, -1).clone() for w in W]
        for k in range(1, len(W)):
            if W[k].shape[2] != W[k - 1].shape[1]:
                raise ValueError(f"matrices: W_{k + 1} has {W[k].shape[2]} columns but W_{k} has {W[k - 1].shape[1]} rows")
        return W
    widths = check_widths(widths)
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    if sign_fix and (data is None or loss is None) and scheme != "zero_first":
        raise ValueError(f"init scheme {scheme!r} with sign_fix needs data and loss (Assumption 2 is about R(W(0)))")
    gens = _generators(seeds)
    L = len(widths) - 1
    if scheme == "balanced":
        us = [_unit(gens, widths[k], dtype) for k in range(L)]  # u_0 .. u_{L-1}
        us.append(torch.ones(len(seeds), widths[L], dtype=dtype) / math.sqrt(widths[L]))
        if sign_fix:
            Z = _as_data_tensor(data, dtype, "cpu")
            flip = torch.sign(us[0] @ Z.mean(0))  # <u_0, z_bar> > 0 lowers the risk to first order
            us[0] = us[0] * torch.where(flip == 0, torch.ones_like(flip), flip).unsqueeze(1)
        W = [scale * us[k + 1].unsqueeze(2) * us[k].unsqueeze(1) for k in range(L)]
    else:
        W = []
        for k in range(L):
            std = 0.0 if (scheme == "zero_first" and k == 0) else scale * ((k + 1) if scheme == "large" else 1.0)
            W.append(std * _randn(gens, (widths[k + 1], widths[k]), dtype))
    W = [w.to(device) for w in W]
    if sign_fix and scheme != "zero_first":
        W = _fix_sign(W, data, loss)
        if scheme == "large":
            for _ in range(max_redraws):
                bad = ~assumption2(W, data, loss)
                if not bad.any():
                    break
                idx = bad.nonzero().flatten().tolist()
                for b in idx:  # redraw from the same seed's stream: still deterministic
                    for k in range(L):
                        W[k][b] = (scale * (k + 1) * torch.randn(widths[k + 1], widths[k], generator=gens[b],
                                                                  dtype=dtype)).to(device)
                W = _fix_sign(W, data, loss)
            else:
                raise ValueError(f"init 'large': could not meet Assumption 2 in {max_redraws} redraws; lower scale")
    return W


def _fix_sign(W: Weights, data, loss) -> Weights:
    """Flip W_L where that lowers the risk (R(-w_prod) < R(w_prod))."""
    Z = _as_data_tensor(data, W[0].dtype, W[0].device)
    loss = _losses.get(loss)
    s = margins(W, Z)
    flip = _losses.log_risk(loss, -s) < _losses.log_risk(loss, s)
    sign = torch.where(flip, -1.0, 1.0).to(W[-1].dtype).view(-1, 1, 1)
    return W[:-1] + [W[-1] * sign]


# --- checks and constants --------------------------------------------------------------

def assumption2(W: Weights, data, loss, rtol: float = 1e-12) -> torch.Tensor:
    """Assumption 2 per network: grad R(W(0)) != 0 and R(W(0)) <= R(0) = l(0). Bool (B,)."""
    loss = _losses.get(loss)
    lr, R, G = risk_and_grads(W, data, loss)
    gnorm2 = sum((g * g).sum(dim=(1, 2)) for g in G)
    l0 = loss.zero_value
    return (gnorm2 > 0) & (R <= l0 * (1 + rtol))


def imbalance_D(W: Weights) -> torch.Tensor:
    """The paper's D = max_k ||W_k||_F^2 - ||W_L||_F^2 + sum_{k<L} ||W_k W_k^T - W_{k+1}^T W_{k+1}||_2, (B,)."""
    fro2 = torch.stack([(w * w).sum(dim=(1, 2)) for w in W], dim=1)
    D = fro2.max(dim=1).values - fro2[:, -1]
    for A in invariant_matrices(W):
        D = D + torch.linalg.matrix_norm(A, ord=2)
    return D


def invariant_matrices(W: Weights) -> list[torch.Tensor]:
    """A_k = W_k W_k^T - W_{k+1}^T W_{k+1} for k = 1..L-1, each (B, d_k, d_k).

    Conserved exactly by gradient flow (eq. 2); one GD step changes A_k by exactly
    eta^2 (G_k G_k^T - G_{k+1}^T G_{k+1}).
    """
    return [torch.bmm(W[k], W[k].transpose(1, 2)) - torch.bmm(W[k + 1].transpose(1, 2), W[k + 1])
            for k in range(len(W) - 1)]


def flatten(W: Weights) -> torch.Tensor:
    """(B, sum_k d_k d_{k-1}) view of all parameters, layer 1 first."""
    return torch.cat([w.reshape(w.shape[0], -1) for w in W], dim=1)


def unflatten(x: torch.Tensor, widths: Sequence[int]) -> Weights:
    """Inverse of :func:`flatten` for the given widths [d_0, ..., d_L]."""
    out, i = [], 0
    for k in range(len(widths) - 1):
        m = widths[k + 1] * widths[k]
        out.append(x[:, i:i + m].reshape(x.shape[0], widths[k + 1], widths[k]))
        i += m
    return out
