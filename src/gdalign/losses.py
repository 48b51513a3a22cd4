"""Losses of a margin s = y <w, x>, computed stably in the log domain.

The risk is R(w) = (1/n) sum_i l(<w, z_i>). At the risks the theorems are about
(ln(1/R) up to 1e4) R itself underflows, so every loss provides

* ``log_value(s)``  = ln l(s)           (``-inf`` where l(s) = 0),
* ``log_abs_deriv(s)`` = ln |l'(s)|     (``-inf`` where l'(s) = 0),
* ``deriv_sign(s)``  = sign of l'(s),

and :func:`log_risk` / :func:`risk_grad_over_risk` combine them with log-sum-exp.
For the exponential loss, -grad R / R is exactly a softmax-weighted mean of the z_i.

Losses (name -> class): ``exp``, ``logistic``, ``poly`` (polynomial tail, satisfies
Assumption 1 but is not exponentially tailed), ``squared`` and ``hinge`` (both
violate Assumption 1: used for counterexamples).

Example
-------
>>> import torch
>>> L = get("logistic")
>>> s = torch.tensor([[0.0, 2000.0]], dtype=torch.float64)
>>> float(log_risk(L, s)[0])  # ln((ln 2 + e^-2000)/2): finite, no underflow
-1.0596...
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Loss", "Exponential", "Logistic", "PolyTail", "Squared", "Hinge", "get", "LOSSES",
           "log_risk", "risk", "risk_grad_over_risk", "risk_and_grad"]


def _softplus(x: torch.Tensor) -> torch.Tensor:
    """ln(1 + e^x), exact at every x (torch's softplus is linear past its threshold of 20)."""
    return torch.logaddexp(torch.zeros_like(x), x)


def _log_softplus_neg(s: torch.Tensor) -> torch.Tensor:
    """ln(ln(1 + e^{-s})), stable for all s (the log of the logistic loss)."""
    # For s > 30, ln(1+t) = t(1 - t/2 + ...) with t = e^{-s}: ln = -s + log1p(-t/2 + t^2/3).
    t = torch.exp(-s.clamp(min=30.0))
    big = -s + torch.log1p(-t / 2 + t * t / 3)
    small = torch.log(_softplus(-s.clamp(max=30.0)))
    return torch.where(s > 30.0, big, small)


@dataclass(frozen=True)
class Loss:
    """A loss of the margin. Subclasses implement the log-domain pieces."""

    name: str = "loss"
    #: Assumption 1: l' continuous and < 0, l -> inf at -inf, l -> 0 at +inf.
    assumption1: bool = False
    #: Assumption 4 constants (l' is beta-Lipschitz, |l'| <= G) or None if none exist.
    beta: float | None = None
    G: float | None = None
    #: exponentially tailed (the max-margin theorems need it)
    exp_tailed: bool = False
    #: l = 0 on a half-line (hinge): a risk of exactly 0 is a legitimate end, not an underflow
    attains_zero: bool = False

    def log_value(self, s: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_abs_deriv(self, s: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def deriv_sign(self, s: torch.Tensor) -> torch.Tensor:
        return -torch.ones_like(s)

    def value_and_deriv(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(l(s), l'(s)) in the linear domain, with shared work (the GD hot path)."""
        return self.value(s), self.deriv(s)

    # plain (linear-domain) versions, for tests and plots
    def value(self, s: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.log_value(s))

    def deriv(self, s: torch.Tensor) -> torch.Tensor:
        return self.deriv_sign(s) * torch.exp(self.log_abs_deriv(s))

    @property
    def zero_value(self) -> float:
        """l(0) = R(0), the risk of the zero predictor (Assumption 2's bound)."""
        return float(self.value(torch.zeros(1, dtype=torch.float64))[0])


@dataclass(frozen=True)
class Exponential(Loss):
    """l(s) = e^{-s}. Satisfies Assumption 1, not Assumption 4 (no global beta, G)."""

    name: str = "exp"
    assumption1: bool = True
    exp_tailed: bool = True

    def log_value(self, s):
        return -s

    def log_abs_deriv(self, s):
        return -s

    def value(self, s):
        return torch.exp(-s)

    def deriv(self, s):
        return -torch.exp(-s)

    def value_and_deriv(self, s):
        e = torch.exp(-s)
        return e, -e


@dataclass(frozen=True)
class Logistic(Loss):
    """l(s) = ln(1 + e^{-s}). Assumptions 1 and 4 with beta = 1/4, G = 1."""

    name: str = "logistic"
    assumption1: bool = True
    beta: float = 0.25
    G: float = 1.0
    exp_tailed: bool = True

    def log_value(self, s):
        return _log_softplus_neg(s)

    def log_abs_deriv(self, s):
        return -_softplus(s)  # |l'(s)| = 1/(1 + e^{s})

    def value(self, s):
        return _softplus(-s)

    def deriv(self, s):
        return -torch.sigmoid(-s)

    def value_and_deriv(self, s):
        ns = -s
        # softplus is exact to float64 with its linear branch past 50 (e^-50 below rounding)
        return F.softplus(ns, threshold=50.0), -torch.sigmoid(ns)


@dataclass(frozen=True)
class PolyTail(Loss):
    """Polynomial tail: l(s) = (1 + s)^{-k} for s >= 0 and 1 - k s for s < 0.

    C^1 (l(0) = 1, l'(0) = -k on both sides), strictly decreasing, unbounded at -inf and
    -> 0 at +inf, so it satisfies Assumption 1; l' is k(k+1)-Lipschitz and |l'| <= k, so
    Assumption 4 holds with beta = k(k+1), G = k. Its tail is polynomial, not exponential,
    so the max-margin theorems do not apply (the limit direction can differ from u_bar).
    """

    name: str = "poly"
    assumption1: bool = True
    k: float = 2.0
    exp_tailed: bool = False

    def __post_init__(self):
        if not (self.k > 0 and math.isfinite(self.k)):
            raise ValueError(f"PolyTail: k must be a positive finite number, got {self.k!r}")
        object.__setattr__(self, "beta", self.k * (self.k + 1.0))
        object.__setattr__(self, "G", self.k)

    def log_value(self, s):
        pos = -self.k * torch.log1p(s.clamp(min=0.0))
        neg = torch.log1p(-self.k * s.clamp(max=0.0))
        return torch.where(s >= 0, pos, neg)

    def log_abs_deriv(self, s):
        pos = math.log(self.k) - (self.k + 1.0) * torch.log1p(s.clamp(min=0.0))
        return torch.where(s >= 0, pos, torch.full_like(s, math.log(self.k)))


@dataclass(frozen=True)
class Squared(Loss):
    """l(s) = (1 - s)^2: not decreasing, so Assumption 1 fails (counterexample)."""

    name: str = "squared"
    beta: float | None = 2.0
    G: float | None = None

    def log_value(self, s):
        return 2.0 * torch.log(torch.abs(1.0 - s))

    def log_abs_deriv(self, s):
        return math.log(2.0) + torch.log(torch.abs(1.0 - s))

    def deriv_sign(self, s):
        return torch.sign(s - 1.0)


@dataclass(frozen=True)
class Hinge(Loss):
    """l(s) = max(0, 1 - s): l' = 0 past the margin, so Assumption 1 fails."""

    name: str = "hinge"
    G: float | None = 1.0
    attains_zero: bool = True

    def log_value(self, s):
        return torch.log((1.0 - s).clamp(min=0.0))

    def log_abs_deriv(self, s):
        return torch.where(s < 1.0, torch.zeros_like(s), torch.full_like(s, -math.inf))


LOSSES = {"exp": Exponential, "logistic": Logistic, "poly": PolyTail, "squared": Squared, "hinge": Hinge}


def get(name: str | Loss) -> Loss:
    """The loss called ``name`` (one of :data:`LOSSES`), or ``name`` itself if a Loss."""
    if isinstance(name, Loss):
        return name
    try:
        return LOSSES[name]()
    except KeyError:
        raise ValueError(f"loss {name!r} is not known; choose one of {sorted(LOSSES)}") from None


def log_risk(loss: Loss, s: torch.Tensor) -> torch.Tensor:
    """ln R = logsumexp_i ln l(s_i) - ln n, for margins ``s`` of shape (B, n) -> (B,)."""
    return torch.logsumexp(loss.log_value(s), dim=-1) - math.log(s.shape[-1])


def risk(loss: Loss, s: torch.Tensor) -> torch.Tensor:
    """R = mean_i l(s_i), shape (B,). Underflows to 0 at extreme margins: prefer log_risk."""
    return torch.exp(log_risk(loss, s))


def risk_grad_over_risk(loss: Loss, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ln R, c) with c_i = l'(s_i) / (n R), so that grad R(w) / R = sum_i c_i z_i.

    Shapes: ``s`` (B, n) -> ln R (B,), c (B, n). Stable at any scale: c is a signed
    softmax, c_i = sign_i exp(ln|l'(s_i)| - logsumexp_j ln l(s_j)).
    """
    lv = loss.log_value(s)
    lse = torch.logsumexp(lv, dim=-1, keepdim=True)
    c = loss.deriv_sign(s) * torch.exp(loss.log_abs_deriv(s) - lse)
    # R = 0 exactly (hinge past the margin): the gradient is 0, not 0/0.
    c = torch.where(torch.isfinite(lse), c, torch.zeros_like(c))
    return (lse.squeeze(-1) - math.log(s.shape[-1])), c


def risk_and_grad(loss: Loss, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ln R, R, c) with c_i = l'(s_i)/n, so that grad R(w) = sum_i c_i z_i (unscaled)."""
    lr, c = risk_grad_over_risk(loss, s)
    R = torch.exp(lr)
    return lr, R, c * R.unsqueeze(-1)
