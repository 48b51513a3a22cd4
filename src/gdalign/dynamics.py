"""Gradient descent and gradient flow on batched deep linear networks, recorded into tidy tables.

* :func:`gradient_descent` -- W(t+1) = W(t) - eta_t grad R(W(t)) with a constant step, a
  schedule ``eta(t)`` the user passes, or the paper's Assumption 5 schedule
  eta_t = min{1/beta(R_t), 1}, beta(R) = 2 L^2 R^{2L-2} (beta + G), with the ball radius
  R_t grown by backtracking (SPEC section 2) so that W(t) and W(t+1) both lie in B(R_t).
* :func:`gradient_flow` -- dW/dt = -grad R integrated by an adaptive ODE solver (scipy's
  DOP853 by default). With ``clock="risk"`` (the default) it integrates
  dW/dsigma = -(grad R / R) / (1 + ||grad R / R||^2): a positive rescaling of the field,
  so the *same path* as gradient flow, along which ln(1/R) grows at rate 1 once the
  gradient is large; ln(1/R) = 1000 takes a few hundred solver steps, and every member of a
  batch reaches the target nearly together (the run ends exactly where the slowest does).
  Real time t is accumulated alongside, in the log domain. With ``clock="time"`` the flow
  is integrated in real time t up to ``t_max`` (runs whose risk does not go to 0:
  counterexamples).

Both return a :class:`Run`: ``run.table`` has one row per (record, member) with every
quantity of :func:`gdalign.metrics.network_metrics` plus the clock columns; ``run.meta``
holds the parameters and provenance; ``run.W`` the final weights.

Example
-------
>>> from gdalign.data import toy
>>> from gdalign.network import init_network
>>> ds = toy()
>>> W0 = init_network([2, 3, 1], "small", seeds=[0, 1], scale=0.5, data=ds, loss="exp")
>>> run = gradient_flow(W0, ds, "exp", target=50.0, n_records=10)
>>> bool((run.final["neg_log_risk"] > 49.9).all())
True
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.optimize import brentq

from . import losses as _losses
from .claims import provenance
from .metrics import Reference, network_metrics
from .network import (Weights, binary_sq_norms, binary_step_factors, factor_sq_norms, flatten, multiclass_risk_and_grads, risk_and_grads, unflatten,
                      widths_of)
from .progress import bar


@dataclass
class Run:
    """A recorded run. ``table``: one row per (record, member); ``meta``: parameters and provenance."""

    table: pd.DataFrame
    meta: dict
    W: Weights
    W0: Weights
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def final(self) -> pd.DataFrame:
        """The last record of every member."""
        return self.table[self.table["record"] == self.table["record"].max()].reset_index(drop=True)

    def member(self, b: int) -> pd.DataFrame:
        return self.table[self.table["member"] == b].reset_index(drop=True)


def _objective(data, loss, labels):
    """grad function (W, scaled, factors) -> (ln R, R, grads) for the binary or the multiclass risk."""
    if labels is None:
        Z = np.asarray(getattr(data, "Z", data))
        cache = {}

        def f(W, scaled=False, factors=False):
            key = (W[0].dtype, W[0].device)
            if key not in cache:  # the data as a tensor once, not at every step
                cache[key] = torch.as_tensor(Z, dtype=key[0], device=key[1])
            return risk_and_grads(W, cache[key], loss, scaled=scaled, factors=factors)
        return f
    X = torch.as_tensor(np.asarray(data.X if hasattr(data, "X") else data))
    lab = torch.as_tensor(np.asarray(labels), dtype=torch.long)

    def f(W, scaled=False, factors=False):
        return multiclass_risk_and_grads(W, X.to(W[0].dtype).to(W[0].device), lab.to(W[0].device), scaled=scaled,
                                         factors=factors)
    return f


def _check_weights(W0: Weights) -> Weights:
    if not isinstance(W0, (list, tuple)) or not W0 or not all(isinstance(w, torch.Tensor) and w.dim() == 3 for w in W0):
        raise ValueError("W0 must be a list of (B, d_k, d_{k-1}) tensors, e.g. from gdalign.network.init_network")
    for w in W0:
        if not torch.isfinite(w).all():
            raise ValueError("W0 holds NaN or inf entries")
    return [w.detach().clone() for w in W0]


def _metrics_frame(W, data, loss, ref, u_bar, gamma, extra: dict, obj, labels) -> pd.DataFrame:
    binary = labels is None
    m = network_metrics(W, data if binary else None, loss, ref=ref, u_bar=u_bar if binary else None,
                        gamma=gamma, grads=binary)
    if not binary:  # the multiclass risk: metrics of the layers only, plus its risk
        lr, _, G = obj(W)
        m["log_risk"] = lr.cpu().numpy()
        m["neg_log_risk"] = -m["log_risk"]
        m["grad_w1"] = G[0].flatten(1).norm(dim=1).cpu().numpy()
    B = W[0].shape[0]
    m.update({k: np.broadcast_to(np.asarray(v), (B,)) for k, v in extra.items()})
    m["member"] = np.arange(B)
    return pd.DataFrame(m)


def _meta(kind: str, W0, data, loss, seeds, **params) -> dict:
    return {"dynamics": kind, "loss": _losses.get(loss).name, "widths": widths_of(W0), "batch": W0[0].shape[0],
            "seeds": list(seeds) if seeds is not None else None, "data": getattr(data, "name", "array"),
            "data_source": getattr(data, "source", ""), "dtype": str(W0[0].dtype), "device": str(W0[0].device),
            **params, "provenance": provenance()}


# --- gradient flow ---------------------------------------------------------------------

def _log_integral_exp(g0: np.ndarray, g1: np.ndarray, h: float) -> np.ndarray:
    """ln of the integral over [0, h] of exp(g), g linear from g0 to g1 (exact for log-linear integrands)."""
    dg = g1 - g0
    small = np.abs(dg) < 1e-8
    safe = np.where(small, 1.0, dg)
    # ln((e^{g1} - e^{g0}) / dg) = max(g0, g1) + ln(-expm1(-|dg|) / |dg|)
    with np.errstate(divide="ignore", invalid="ignore"):
        val = np.maximum(g0, g1) + np.log(-np.expm1(-np.abs(safe)) / np.abs(safe))
    return np.log(h) + np.where(small, 0.5 * (g0 + g1), val)


def gradient_flow(W0: Weights, data, loss, *, target: float | None = 1000.0, t_max: float | None = None,
                  clock: str | None = None, n_records: int = 100, rtol: float = 1e-10, atol: float = 1e-12,
                  method: str = "DOP853", max_fev: int = 500_000, u_bar=None, gamma: float | None = None,
                  seeds: Sequence[int] | None = None, labels=None, progress: bool | None = None) -> Run:
    """Integrate gradient flow from ``W0`` (list of (B, d_k, d_{k-1}) tensors).

    Parameters
    ----------
    target : float
        ln(1/R) at which to stop (``clock="risk"``): the run ends at the first solver step
        where every member has ln(1/R) >= target.
    t_max : float
        Real time at which to stop (``clock="time"``).
    clock : {"risk", "time"}
        Default: "risk" when ``target`` is given, else "time". The risk clock integrates
        dW/dsigma = -(grad R / R) / (1 + ||grad R / R||^2): the gradient-flow path (a
        positive rescaling of its field), along which ln(1/R) grows at rate -> 1 once the
        gradient is large, so all members of a batch reach the target nearly together.
        Real time t = int dsigma / (R (1 + ||grad R / R||^2)) is accumulated in the log
        domain over the solver's steps, taking ln(dt/dsigma) linear within a step: t is
        accurate to about 1% relative (the path itself to the solver's tolerance). As part
        of the ODE state t would be stiff (it relaxes at rate ~1 while steps grow to ~10).
        The time clock integrates dW/dt = -grad R, with t exact.
    n_records : int
        Records at the first solver step past each of ``n_records - 1`` log-spaced levels of
        the clock's progress (min over members of ln(1/R) - ln(1/R(0)), or t), plus the start
        and the end.
    rtol, atol, method
        Tolerances and method (a :mod:`scipy.integrate` OdeSolver name) of the adaptive solver.
    max_fev : int
        Field evaluations after which the run stops with an error (a risk that stalls, e.g.
        on non-separable data, never reaches the target).
    u_bar, gamma
        Max-margin direction and margin, for the data-alignment metrics.
    labels : (n,) ints, optional
        Class labels for a multi-output (d_L = K) network with the softmax cross-entropy
        risk; ``loss`` is then only a label in the metadata.

    Returns
    -------
    Run
        ``table`` columns: member, record, clock (sigma or t), log1p_t (ln(1 + t)), n_fev,
        and every metric. ``meta`` holds n_fev and the wall time.
    """
    import scipy.integrate

    W0 = _check_weights(W0)
    loss = _losses.get(loss)
    clock = clock or ("risk" if target is not None else "time")
    if clock not in ("risk", "time"):
        raise ValueError(f"clock must be 'risk' or 'time', got {clock!r}")
    if clock == "risk" and (target is None or not math.isfinite(target)):
        raise ValueError("clock='risk' needs a finite target ln(1/R)")
    if clock == "time" and not (t_max is not None and math.isfinite(t_max) and t_max > 0):
        raise ValueError(f"clock='time' needs t_max > 0, got {t_max!r}")
    if isinstance(n_records, bool) or not isinstance(n_records, int) or n_records < 2:
        raise ValueError(f"n_records must be an integer >= 2, got {n_records!r}")
    solver_cls = getattr(scipy.integrate, method, None)
    if not (isinstance(solver_cls, type) and issubclass(solver_cls, scipy.integrate.OdeSolver)):
        raise ValueError(f"method {method!r} is not a scipy.integrate OdeSolver (e.g. 'DOP853', 'RK45', 'Radau')")
    widths = widths_of(W0)
    B, dtype, device = W0[0].shape[0], W0[0].dtype, W0[0].device
    npar = sum(w[0].numel() for w in W0)
    obj = _objective(data, loss, labels)
    ref = Reference(W0)
    lam0 = float(-obj(W0)[0].min())
    if clock == "risk" and lam0 >= target:
        raise ValueError(f"target ln(1/R) = {target} is not above the start (min {lam0:.4g})")
    cache = {}  # ln R at the last evaluated state: DOP853's last stage is the accepted point

    def weights_of(y):
        x = torch.from_numpy(y).to(device=device, dtype=dtype)
        return unflatten(x.view(B, npar), widths)

    def field_fn(u, y):
        Wf = weights_of(y)
        if clock == "time":
            lr, _, G = obj(Wf)
            cache.update(t=u, y=y, lr=lr)
            return -flatten(G).reshape(-1).cpu().numpy()
        lr, _, G = obj(Wf, scaled=True)
        v2 = sum((g * g).sum(dim=(1, 2)) for g in G)
        if not bool((v2 > 0).all()):
            raise FloatingPointError("the gradient vanished: the risk clock needs grad R != 0 (Assumption 2); "
                                     "use clock='time'")
        scale = 1.0 / (1.0 + v2)  # smooth: a kink (max(1, v2)) costs the solver its order
        cache.update(t=u, y=y, lr=lr, log_dt=(-lr + torch.log(scale)).cpu().numpy())  # ln dt/dsigma
        return (-flatten(G) * scale.unsqueeze(1)).reshape(-1).cpu().numpy()

    y0 = flatten(W0).reshape(-1).cpu().numpy()
    if clock == "risk":
        levels = lam0 + np.geomspace(1e-3, 1.0, n_records - 1) * (target - lam0)
    else:
        levels = np.geomspace(t_max * 1e-4, t_max, n_records - 1)
    solver = solver_cls(field_fn, 0.0, y0, np.inf if clock == "risk" else t_max, rtol=rtol, atol=atol)

    def at_step_end(u, y):
        """(ln R, ln dt/dsigma) at the accepted point, from the cache when the solver's last call was there."""
        if not (cache.get("t") == u and cache.get("y") is y):
            field_fn(u, y)
        return cache["lr"], cache.get("log_dt")

    frames = []
    log_t = np.full(B, -np.inf)  # ln t, accumulated over steps (risk clock)

    def record(u, y):
        Wj = weights_of(y)
        log1p_t = np.logaddexp(0.0, log_t) if clock == "risk" else np.full(B, math.log1p(u))
        with np.errstate(over="ignore"):
            t = np.expm1(log1p_t)
        frames.append(_metrics_frame(Wj, data, loss, ref, u_bar, gamma,
                                     {"record": len(frames), "clock": u, "log1p_t": log1p_t, "t": t,
                                      "n_fev": solver.nfev}, obj, labels))

    field_fn(0.0, y0)
    prev_u, prev_g = 0.0, cache.get("log_dt")
    record(0.0, y0)
    nxt = 0
    t0 = time.perf_counter()
    u_end, y_end = 0.0, y0
    with bar(total=len(levels), desc=f"gradient flow ({clock} clock)", enabled=progress) as pbar:
        while True:
            msg = solver.step()
            if solver.status == "failed":
                raise RuntimeError(f"gradient flow: the ODE solver failed: {msg}")
            u_end, y_end = solver.t, solver.y
            lr, g = at_step_end(u_end, y_end)
            if not bool(torch.isfinite(lr).all()) and not (loss.attains_zero and bool((lr == -math.inf).any())
                                                         and not bool(torch.isnan(lr).any())):
                raise FloatingPointError("gradient flow: the risk became non-finite")
            p = float((-lr).min()) if clock == "risk" else u_end
            done = (clock == "risk" and p >= target) or solver.status == "finished"
            if done and clock == "risk" and p > target:
                # land on the target: the sigma in this step where min ln(1/R) = target, on the step's interpolant
                interp = solver.dense_output()
                lam_min = lambda u: float((-obj(weights_of(interp(u)))[0]).min()) - target  # noqa: E731
                u_end = brentq(lam_min, solver.t_old, solver.t, xtol=1e-14 * max(1.0, solver.t), rtol=1e-15)
                for _ in range(60):  # brentq may land a rounding step short: end at or past the target
                    y_end = interp(u_end)
                    lr, g = at_step_end(u_end, y_end)
                    p = float((-lr).min())
                    if p >= target or u_end >= solver.t:
                        break
                    u_end = min(solver.t, u_end + 1e-13 * max(1.0, abs(u_end)) * 2 ** _)
            if clock == "risk":
                log_t = np.logaddexp(log_t, _log_integral_exp(prev_g, g, u_end - prev_u))
                prev_u, prev_g = u_end, g
            crossed = 0
            while nxt < len(levels) and p >= levels[nxt] - 1e-9 * abs(levels[nxt]):
                nxt += 1
                crossed += 1
            if crossed or done:
                record(u_end, y_end)
                pbar.update(crossed)
            if done:
                break
            if solver.nfev > max_fev:
                raise RuntimeError(f"gradient flow: stopped after {solver.nfev} field evaluations at "
                                   f"{'ln(1/R)' if clock == 'risk' else 't'} = {p:.6g} without reaching "
                                   f"{target if clock == 'risk' else t_max}: the risk may be stalling "
                                   "(non-separable data, or Assumption 2 violated?)")
    wall = time.perf_counter() - t0
    table = pd.concat(frames, ignore_index=True)
    if seeds is not None:
        table["seed"] = np.asarray(list(seeds))[table["member"].to_numpy()]
    W = [w.clone() for w in weights_of(y_end)]
    meta = _meta("gradient_flow", W0, data, loss, seeds, clock=clock, target=target, t_max=t_max, method=method,
                 rtol=rtol, atol=atol, n_fev=int(solver.nfev), wall_time_s=round(wall, 4))
    summary = pd.DataFrame({"member": np.arange(B), "n_fev": int(solver.nfev), "wall_time_s": wall})
    return Run(table, meta, W, W0, summary)


# --- gradient descent --------------------------------------------------------------------

class _StepLog:
    """Per-step quantities of GD, kept as tensor references and reduced in chunks.

    The descent inequality (eq. 4), the budgets S_t and sum eta ||grad R||^2, and the risk's
    monotonicity are checked at every step, vectorised over a chunk instead of with a dozen
    small tensor operations per step (which dominate the cost of a step on small networks).
    """

    def __init__(self, B, dtype, device, rtol):
        z = torch.zeros(B, dtype=dtype, device=device)
        self.S, self.sum_eg, self.rtol = z.clone(), z.clone(), rtol
        self.max_slack = torch.full((B,), -math.inf, dtype=dtype, device=device)
        self.n_viol = torch.zeros(B, dtype=torch.long, device=device)
        self.risk_up = torch.zeros(B, dtype=torch.long, device=device)
        self.R, self.eta, self.g2 = [], [], []  # R of steps j..j+m, eta and g2 of steps j..j+m-1

    def add(self, R, eta, g2):
        self.R.append(R)
        self.eta.append(eta)
        self.g2.append(g2)

    def flush(self):
        """Fold the steps whose successor risk is known into the running totals."""
        m = len(self.R) - 1
        if m < 1:
            return
        R = torch.stack(self.R)
        if all(isinstance(e, float) for e in self.eta[:m]):  # constant or scheduled steps: one tensor
            eta = torch.tensor(self.eta[:m], dtype=R.dtype, device=R.device).unsqueeze(1)
        else:
            eta = torch.stack([torch.as_tensor(e, dtype=R.dtype, device=R.device).expand(R.shape[1])
                               for e in self.eta[:m]])
        g2 = torch.stack(self.g2[:m])
        eg = eta * g2
        slack = (R[1:] - R[:-1] + 0.5 * eg) / R[:-1].clamp(min=1e-300)
        self.max_slack = torch.maximum(self.max_slack, slack.max(dim=0).values)
        self.n_viol += (slack > self.rtol).sum(dim=0)
        self.risk_up += (R[1:] > R[:-1]).sum(dim=0)
        self.S = self.S + (eta * eg).sum(dim=0)
        self.sum_eg = self.sum_eg + eg.sum(dim=0)
        self.R, self.eta, self.g2 = self.R[m:], self.eta[m:], self.g2[m:]


def beta_R(R: torch.Tensor | float, L: int, loss) -> torch.Tensor | float:
    """Lemma 5's smoothness constant on B(R): beta(R) = 2 L^2 R^{2L-2} (beta + G), for R >= 1."""
    loss = _losses.get(loss)
    if loss.beta is None or loss.G is None:
        raise ValueError(f"loss {loss.name!r} has no Assumption 4 constants (beta, G); "
                         "the Assumption 5 schedule needs one that does (logistic, poly)")
    return 2.0 * L * L * R ** (2 * L - 2) * (loss.beta + loss.G)


def record_steps(steps: int, n_records: int) -> np.ndarray:
    """Log-spaced integer steps in [0, steps], always including 0 and ``steps``."""
    if n_records < 2:
        return np.array([0, steps])
    s = np.unique(np.concatenate([[0], np.round(np.geomspace(1, max(steps, 1), n_records - 1)).astype(int)]))
    return s[s <= steps]


def gradient_descent(W0: Weights, data, loss, steps: int, step: float | str | Callable[[int], float] = "assumption5",
                     *, n_records: int = 100, target: float | None = None, u_bar=None, gamma: float | None = None,
                     seeds: Sequence[int] | None = None, ball: float | None = None, labels=None,
                     descent_rtol: float = 1e-12, progress: bool | None = None) -> Run:
    """Run ``steps`` steps of gradient descent on B networks at once.

    Parameters
    ----------
    steps : int
        Number of steps (the run stops earlier once every member has ln(1/R) >= ``target``).
    step : float, callable or "assumption5"
        A constant eta; a function t -> eta_t; or the paper's Assumption 5 schedule.
    ball : float, optional
        Track the first step at which max_k ||W_k||_F exceeds ``ball`` (Lemma 6).
    descent_rtol : float
        Relative rounding allowance for the descent inequality (eq. 4) check:
        R(t+1) - R(t) + (eta_t/2) ||grad R||^2 <= descent_rtol * R(t).

    Returns
    -------
    Run
        ``table`` columns add: step, eta (eta_t of the step *from* this record), ball_R (R_t),
        S (S_t = sum_{s<t} eta_s^2 ||grad R||^2), sum_eta_g2 (sum_{s<t} eta_s ||grad R||^2).
        ``summary`` per member: max_descent_slack (relative; eq. 4 holds where <= descent_rtol),
        n_descent_violations, risk_increases, ball_decreases, first_exit (step or -1), steps_done.
    """
    W = _check_weights(W0)
    W0 = [w.clone() for w in W]
    loss = _losses.get(loss)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    L = len(W)
    B, dtype, device = W[0].shape[0], W[0].dtype, W[0].device
    schedule = step if isinstance(step, str) else "constant" if not callable(step) else "callable"
    if isinstance(step, str):
        if step != "assumption5":
            raise ValueError(f"step must be a positive number, a callable or 'assumption5', got {step!r}")
        beta_R(1.0, L, loss)  # raises unless the loss has Assumption 4 constants
    elif not callable(step) and not (isinstance(step, (int, float)) and math.isfinite(step) and step > 0):
        raise ValueError(f"step must be a positive finite number, a callable or 'assumption5', got {step!r}")
    obj = _objective(data, loss, labels)
    ref = Reference(W0) if n_records > 0 else None  # SVDs of W(0): only needed for records
    rec = set(record_steps(steps, n_records).tolist()) if n_records > 0 else set()
    log = _StepLog(B, dtype, device, descent_rtol)
    ball_R = torch.ones(B, dtype=dtype, device=device)
    ball_down = torch.zeros(B, dtype=torch.long, device=device)
    first_exit = torch.full((B,), -1, dtype=torch.long, device=device)
    frames = []
    t0 = time.perf_counter()
    done = 0
    W = [w.contiguous() for w in W]  # updated in place below
    binary = labels is None and W[-1].shape[1] == 1
    if binary:  # the lean hot path: data as tensors once, transposed views once
        Z = torch.as_tensor(np.asarray(getattr(data, "Z", data)), dtype=dtype, device=device)
        ZT, Zn, WT = Z.T.contiguous(), Z / Z.shape[0], [w.transpose(1, 2) for w in W]
    for t in bar(range(steps + 1), desc="gradient descent", enabled=progress):
        # gradients as factors A_k^T N_k: the step and every norm use the vectors, never the matrices
        if binary:
            R, F = binary_step_factors(W, ZT, Zn, loss, WT)
            lr = torch.log(R) if (target is not None or t % 64 == 0) else None  # -inf past ln(1/R) ~ 745
        else:
            lr, R, F = obj(W, factors=True)
        gk2 = binary_sq_norms(F) if binary else factor_sq_norms(F)  # ||dR/dW_k||_F^2, (B, L)
        g2 = gk2.sum(dim=1)
        if t % 64 == 0 and not bool(torch.isfinite(lr).all()):  # a sync: not at every step
            zero = bool((lr == -math.inf).any()) and not bool(torch.isnan(lr).any() | (lr == math.inf).any())
            if zero and not loss.attains_zero:
                raise FloatingPointError(f"gradient descent: the risk underflowed float64 by step {t} "
                                         "(ln(1/R) > 745); use gradient_flow for such risks")
            if not zero:
                raise FloatingPointError(f"gradient descent diverged by step {t} (non-finite risk); lower the step")
            # else R = 0 exactly (hinge past the margin): the gradient is 0 and GD has stopped
        if ball is not None or schedule == "assumption5":
            fro2 = torch.stack([(w * w).sum(dim=(1, 2)) for w in W], dim=1)  # (B, L)
            mf = fro2.max(dim=1).values.sqrt()
        if ball is not None:
            first_exit = torch.where((first_exit < 0) & (mf > ball), torch.full_like(first_exit, t), first_exit)
        last = t == steps or (target is not None and bool((-lr >= target).all()))
        # the step from W(t): eta_t (and R_t for Assumption 5)
        if schedule == "assumption5":
            new_R = torch.maximum(torch.maximum(ball_R, torch.ones_like(ball_R)), mf)
            ball_down += (new_R < ball_R).long()
            ball_R = new_R
            # ||W_k - eta G_k||_F^2 = ||W_k||^2 - 2 eta <W_k, G_k> + eta^2 ||G_k||^2, <W_k, A^T N> = tr(A W_k N^T)
            wg = torch.stack([torch.diagonal(torch.bmm(w if A is None else torch.bmm(A, w), N.transpose(1, 2)),
                                             dim1=1, dim2=2).sum(1) for w, (A, N) in zip(W, F)], dim=1)
            while True:  # backtracking: grow R_t until W(t+1) stays in B(R_t)
                eta = torch.clamp(1.0 / beta_R(ball_R, L, loss), max=1.0)
                e = eta.unsqueeze(1)
                nxt2 = (fro2 - 2 * e * wg + e * e * gk2).clamp(min=0).max(dim=1).values
                out = nxt2.sqrt() > ball_R * (1 + 1e-12)
                if not out.any():
                    break
                ball_R = torch.where(out, 2.0 * ball_R, ball_R)
        else:
            e = float(step(t)) if schedule == "callable" else float(step)
            if not (math.isfinite(e) and e > 0):
                raise ValueError(f"step schedule gave eta_{t} = {e!r}; it must be positive and finite")
            eta = e
        log.add(R, eta, g2)
        if t in rec or last or len(log.R) > 256:
            log.flush()
        if n_records > 0 and (t in rec or last):  # n_records=0: no record, no SVDs (pure throughput)
            frames.append(_metrics_frame(W, data, loss, ref, u_bar, gamma,
                                         {"record": len(frames), "step": t,
                                          "eta": np.broadcast_to(np.asarray(torch.as_tensor(eta).cpu()), (B,)),
                                          "ball_R": ball_R.cpu().numpy(), "S": log.S.cpu().numpy(),
                                          "sum_eta_g2": log.sum_eg.cpu().numpy()}, obj, labels))
        done = t
        if last:
            break
        const = schedule != "assumption5"
        neg_eta = -e if const else (-eta).view(-1, 1, 1)
        for w, (A, N) in zip(W, F):  # W_k <- W_k - eta A^T N, in place, one fused op per layer
            if A is None and const:  # the last layer: A = identity
                w.add_(N, alpha=neg_eta)
            elif A is None:
                w.addcmul_(N, neg_eta)
            elif const:
                w.baddbmm_(A.transpose(1, 2), N, alpha=neg_eta)
            else:
                w.baddbmm_(A.transpose(1, 2), N * neg_eta)
    wall = time.perf_counter() - t0
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if seeds is not None and len(table):
        table["seed"] = np.asarray(list(seeds))[table["member"].to_numpy()]
    summary = pd.DataFrame({
        "member": np.arange(B),
        "max_descent_slack": log.max_slack.cpu().numpy(),
        "n_descent_violations": log.n_viol.cpu().numpy(),
        "risk_increases": log.risk_up.cpu().numpy(),
        "ball_decreases": ball_down.cpu().numpy(),
        "first_exit": first_exit.cpu().numpy(),
        "steps_done": done,
    })
    meta = _meta("gradient_descent", W0, data, loss, seeds, schedule=schedule,
                 step=step if not callable(step) else getattr(step, "__name__", "callable"),
                 steps=steps, steps_done=done, target=target, ball=ball, wall_time_s=round(wall, 4))
    return Run(table, meta, W, W0, summary)
