"""Alignment, invariant and margin quantities of a batch of deep linear networks.

:func:`network_metrics` returns, for B networks, every quantity of SPEC section 6.0 as
1-D arrays of length B (layer quantities get a ``_k`` suffix, k = 1..L):

========================  ================================================================
``log_risk``              ln R (the risk itself underflows; ``neg_log_risk`` = ln(1/R))
``fro_k``, ``spec_k``     ||W_k||_F and ||W_k||_2
``r_k``                   ||W_k||_2 / ||W_k||_F          (Theorem 1 (iii): -> 1)
``one_minus_r_k``         1 - r_k = gap_k / (||W_k||_F (||W_k||_F + ||W_k||_2)), no cancellation
``gap_k``                 ||W_k||_F^2 - ||W_k||_2^2 = sum_{i>=2} sigma_i^2  (Lemma 2 (i): <= D)
``a_k``, ``one_minus_a_k``  |<v_{k+1}, u_k>|, k < L        (Theorem 1 (iv): -> 1)
``lemma2_rhs_k``          1 - (D + ||W_{k+1}(0)||_2^2 + ||W_k(0)||_2^2)/||W_{k+1}||_2^2 (Lemma 2 (ii): a_k^2 >=)
``inv_drift_k``           ||A_k(t) - A_k(0)||_2, A_k = W_k W_k^T - W_{k+1}^T W_{k+1}   (eq. 2)
``fro_diff_drift_k``      |(||W_{k+1}||_F^2 - ||W_k||_F^2)(t) - (same)(0)|               (eq. 3)
``wprod_norm``            ||w_prod||
``prod_ratio``            ||w_prod|| / prod_k ||W_k||_F  (-> 1: no norm wasted)
``wprod_v1``              |<w_prod/||w_prod||, v_1>|     (Theorem 1 (v): -> 1)
``grad_w1``               ||dR/dW_1||_F                  (Lemma 1's floor)
``v1_ubar``               |<v_1, u_bar>|                 (Theorem 2: -> 1)
``wprod_ubar``            <w_prod/||w_prod||, u_bar>, signed (Theorem 2: -> +1)
``angle_ubar``            angle between w_prod and u_bar, radians (atan2, accurate near 0)
``dist_ubar``             || w_prod / prod_k ||W_k||_F - u_bar ||
``margin_ratio``          min_i <w_prod, z_i> / ||w_prod|| / gamma  (-> 1)
``perp_w1``, ``perp_wprod``  ||Pi_perp W_1||_F (= ||W_1 Pi_perp||_F) and ||Pi_perp w_prod||
========================  ================================================================

The u_bar quantities are present only when ``u_bar`` (and ``gamma``) are given.

Example
-------
>>> from gdalign.data import toy
>>> from gdalign.network import init_network
>>> ds = toy()
>>> W = init_network([2, 3, 1], "balanced", seeds=[0], scale=1.0, data=ds, loss="exp")
>>> m = network_metrics(W, ds, "exp")
>>> round(float(m["r_1"][0]), 12), round(float(m["a_1"][0]), 12)
(1.0, 1.0)
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import losses as _losses
from .network import Weights, _as_data_tensor, imbalance_D, invariant_matrices, risk_and_grads, w_prod


def safe_norm(x: torch.Tensor, dim) -> torch.Tensor:
    """Euclidean norm along ``dim`` without overflow (scaled by the largest entry first)."""
    m = x.abs().amax(dim=dim, keepdim=True).clamp(min=torch.finfo(x.dtype).tiny)
    return torch.linalg.vector_norm(x / m, dim=dim) * m.squeeze(dim)


def top_singular(W: torch.Tensor):
    """(sigma (B, r), u_1 (B, m), v_1 (B, n)) of a batch of matrices (B, m, n)."""
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    return S, U[:, :, 0], Vh[:, 0, :]


class Reference:
    """What the metrics compare against: the initial weights W(0) and their constants."""

    def __init__(self, W0: Weights):
        self.W0 = [w.detach().clone() for w in W0]
        self.A0 = invariant_matrices(self.W0)
        fro2 = [(w * w).sum(dim=(1, 2)) for w in self.W0]
        self.fro_diff0 = [fro2[k + 1] - fro2[k] for k in range(len(W0) - 1)]
        self.spec0 = [torch.linalg.matrix_norm(w, ord=2) for w in self.W0]
        self.D = imbalance_D(self.W0)


def network_metrics(W: Weights, data, loss, ref: Reference | None = None, u_bar=None, gamma: float | None = None,
                    grads: bool = True) -> dict[str, np.ndarray]:
    """Every tracked quantity for B networks (see the module table). Arrays of shape (B,).

    ``data`` is only read for scalar-output networks (d_L = 1); pass None for d_L > 1.
    """
    loss = _losses.get(loss)
    ref = ref or Reference(W)
    L = len(W)
    out: dict[str, torch.Tensor] = {}
    binary = W[-1].shape[1] == 1
    if binary:
        if grads:
            lr, _, G = risk_and_grads(W, data, loss)
            out["grad_w1"] = G[0].flatten(1).norm(dim=1)
        else:
            Z = _as_data_tensor(data, W[0].dtype, W[0].device)
            lr = _losses.log_risk(loss, w_prod(W) @ Z.T)
        out["log_risk"] = lr
        out["neg_log_risk"] = -lr
    svs = [top_singular(w) for w in W]
    fros = []
    for k, (S, u, v) in enumerate(svs, start=1):
        fro = safe_norm(S, dim=1)
        spec = S[:, 0]
        gap = (S[:, 1:] ** 2).sum(dim=1)
        fros.append(fro)
        out[f"fro_{k}"] = fro
        out[f"spec_{k}"] = spec
        out[f"r_{k}"] = spec / fro
        out[f"one_minus_r_{k}"] = gap / (fro * (fro + spec))
        out[f"gap_{k}"] = gap
    for k in range(1, L):
        u_k = svs[k - 1][1]
        v_next = svs[k][2]
        dot = (v_next * u_k).sum(dim=1)
        a = dot.abs()
        resid2 = ((v_next - dot.unsqueeze(1) * u_k) ** 2).sum(dim=1)  # = 1 - a^2, computed without cancellation
        out[f"a_{k}"] = a
        out[f"one_minus_a_{k}"] = resid2 / (1 + a)
        out[f"lemma2_rhs_{k}"] = 1 - (ref.D + ref.spec0[k] ** 2 + ref.spec0[k - 1] ** 2) / out[f"spec_{k + 1}"] ** 2
    for k, A in enumerate(invariant_matrices(W), start=1):
        out[f"inv_drift_{k}"] = torch.linalg.matrix_norm(A - ref.A0[k - 1], ord=2)
        fd = fros[k] ** 2 - fros[k - 1] ** 2
        out[f"fro_diff_drift_{k}"] = (fd - ref.fro_diff0[k - 1]).abs()
    out["D"] = ref.D
    out["max_fro"] = torch.stack(fros, dim=1).max(dim=1).values
    if binary:
        w = w_prod(W)
        wn = safe_norm(w, dim=1)
        log_prod_fro = torch.stack(fros, dim=1).log().sum(dim=1)  # the product itself can overflow
        out["wprod_norm"] = wn
        out["prod_ratio"] = torch.exp(wn.log() - log_prod_fro)
        v1 = svs[0][2]
        out["wprod_v1"] = ((w * v1).sum(dim=1) / wn).abs()
        if u_bar is not None:
            ub = torch.as_tensor(np.asarray(u_bar), dtype=w.dtype, device=w.device)
            along = w @ ub
            perp = w - along.unsqueeze(1) * ub
            out["v1_ubar"] = (v1 @ ub).abs()
            out["wprod_ubar"] = along / wn
            perp_n = safe_norm(perp, dim=1)
            out["angle_ubar"] = torch.atan2(perp_n, along)
            out["dist_ubar"] = (w / wn.unsqueeze(1) * out["prod_ratio"].unsqueeze(1) - ub).norm(dim=1)
            W1perp = W[0] - (W[0] @ ub).unsqueeze(2) * ub.view(1, 1, -1)  # W_1 Pi_perp
            out["perp_w1"] = safe_norm(W1perp.flatten(1), dim=1)
            out["perp_wprod"] = perp_n
            if gamma is not None:
                Z = _as_data_tensor(data, w.dtype, w.device)
                out["margin_ratio"] = (w @ Z.T).min(dim=1).values / wn / float(gamma)
    return {k: v.detach().cpu().numpy() for k, v in out.items()}
