"""Figures shared by the notebooks (seaborn/matplotlib).

Many seeds are drawn as a band (median line, min-max band) rather than one lucky run,
against a progress axis the theory speaks in: ln(1/R), a layer norm, or t on a log axis.

Example
-------
>>> import pandas as pd, numpy as np
>>> df = pd.DataFrame({"member": np.repeat([0, 1], 3), "neg_log_risk": np.tile([1., 10., 100.], 2),
...                    "one_minus_r_1": [0.5, 0.1, 0.01, 0.4, 0.08, 0.02]})
>>> ax = band(df, "neg_log_risk", "one_minus_r_1", label="layer 1")
>>> ax.get_xscale(), ax.get_yscale()
('log', 'log')
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

# Labels of the tracked quantities (see gdalign.metrics), for axes and legends.
LABELS = {
    "neg_log_risk": r"$\ln(1/\mathcal{R})$",
    "log_risk": r"$\ln \mathcal{R}$",
    "t": r"time $t$",
    "step": "step $t$",
    "r": r"$\|W_k\|_2/\|W_k\|_F$",
    "one_minus_r": r"$1 - \|W_k\|_2/\|W_k\|_F$",
    "one_minus_a": r"$1 - |\langle v_{k+1}, u_k\rangle|$",
    "gap": r"$\|W_k\|_F^2 - \|W_k\|_2^2$",
    "inv_drift": r"$\|A_k(t) - A_k(0)\|_2$",
    "fro": r"$\|W_k\|_F$",
    "prod_ratio": r"$\|w_{prod}\| / \prod_k \|W_k\|_F$",
    "v1_ubar": r"$|\langle v_1, \bar u\rangle|$",
    "angle_ubar": r"angle$(w_{prod}, \bar u)$ (rad)",
    "margin_ratio": r"normalised margin $/\ \gamma$",
    "perp_w1": r"$\|\Pi_\perp W_1\|_F$",
    "perp_wprod": r"$\|\Pi_\perp w_{prod}\|$",
}


def setup(context: str = "notebook") -> None:
    """One look for every figure of the book."""
    sns.set_theme(context=context, style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "figure.autolayout": True})


def on_grid(df: pd.DataFrame, x: str, y: str, by: str = "member", logx: bool = True, logy: bool = True,
            n: int | None = None):
    """(grid, Y) with Y[m, j] = member m's ``y`` interpolated at ``grid[j]`` along its own ``x``.

    Members of a batched flow are recorded at the same *records* but at different risks, so
    bands are taken at common values of x (interpolating in log space where the axis is), on
    the range every member covers.
    """
    curves = []
    for _, m in df.groupby(by):
        m = m.sort_values(x)
        xs, ys = m[x].to_numpy(float), m[y].to_numpy(float)
        ok = np.isfinite(xs) & np.isfinite(ys) & ((xs > 0) if logx else True) & ((ys > 0) if logy else True)
        if ok.sum() >= 2:
            curves.append((xs[ok], ys[ok]))
    if not curves:
        raise ValueError(f"on_grid: no member has two finite records of {y!r} against {x!r}")
    lo, hi = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
    if not hi > lo:  # no common range: use the union and let members end where they end
        lo, hi = min(c[0][0] for c in curves), max(c[0][-1] for c in curves)
    n = n or max(len(c[0]) for c in curves)
    grid = np.geomspace(lo, hi, n) if logx else np.linspace(lo, hi, n)
    fx = np.log if logx else (lambda v: v)
    Y = []
    for xs, ys in curves:
        vals = np.interp(fx(grid), fx(xs), np.log(ys) if logy else ys, left=np.nan, right=np.nan)
        Y.append(np.exp(vals) if logy else vals)
    return grid, np.array(Y)


def band(df: pd.DataFrame, x: str, y: str, ax=None, label: str | None = None, color=None, logx: bool = True,
         logy: bool = True, by: str = "member", alpha: float = 0.25, **line_kw):
    """Median over members of ``y`` against ``x`` with a min-max band, at common values of x."""
    ax = ax or plt.gca()
    grid, Y = on_grid(df, x, y, by=by, logx=logx, logy=logy)
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns outside a member's range
            med, lo, hi = np.nanmedian(Y, 0), np.nanmin(Y, 0), np.nanmax(Y, 0)
    keep = np.isfinite(med)
    line, = ax.plot(grid[keep], med[keep], label=label, color=color, **line_kw)
    ax.fill_between(grid[keep], lo[keep], hi[keep], color=line.get_color(), alpha=alpha, linewidth=0)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    return ax


def layer_bands(df: pd.DataFrame, x: str, stem: str, layers: Sequence[int], ax=None, logx: bool = True,
                logy: bool = True, title: str | None = None):
    """:func:`band` of ``{stem}_{k}`` for each layer k, one colour per layer."""
    ax = ax or plt.gca()
    for k in layers:
        band(df, x, f"{stem}_{k}", ax=ax, label=f"k = {k}", logx=logx, logy=logy)
    ax.set_ylabel(LABELS.get(stem, stem))
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return ax


def data_scatter(ds, u_bar=None, directions: dict | None = None, ax=None, title: str | None = None):
    """A 2-D data set (blue +1, red -1) with u_bar and other unit directions drawn from the origin."""
    if ds.d != 2:
        raise ValueError(f"data_scatter draws 2-D data; this set has d = {ds.d}")
    ax = ax or plt.gca()
    pos = ds.y > 0
    ax.scatter(*ds.X[pos].T, c="tab:blue", s=22, label="y = +1")
    ax.scatter(*ds.X[~pos].T, c="tab:red", s=22, label="y = -1")
    arrows = dict(directions or {})
    if u_bar is not None:
        arrows = {r"$\bar u$ (max margin)": u_bar, **arrows}
    styles = ["-", "--", ":", "-."]
    for i, (name, v) in enumerate(arrows.items()):
        v = np.asarray(v, dtype=float)
        v = v / np.linalg.norm(v)
        ax.plot([0, v[0]], [0, v[1]], styles[i % 4], lw=2.2 - 0.4 * i, label=name)
        ax.plot([-v[1] * 1.1, v[1] * 1.1], [v[0] * 1.1, -v[0] * 1.1], styles[i % 4], lw=0.8, color="grey")
    ax.set_aspect("equal")
    ax.set_xlim(-1.15, 1.15)
    ax.set_ylim(-1.15, 1.15)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", loc="lower right")
    return ax
