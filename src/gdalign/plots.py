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


def band(df: pd.DataFrame, x: str, y: str, ax=None, label: str | None = None, color=None, logx: bool = True,
         logy: bool = True, by: str = "member", alpha: float = 0.25, **line_kw):
    """Median over members of ``y`` against ``x`` with a min-max band.

    Members are aligned by record index (every member is recorded at the same records),
    and x is the median over members at each record.
    """
    ax = ax or plt.gca()
    g = df.groupby("record") if "record" in df else df.groupby(df.groupby(by).cumcount())
    xs = g[x].median().to_numpy()
    lo, med, hi = g[y].min().to_numpy(), g[y].median().to_numpy(), g[y].max().to_numpy()
    keep = np.isfinite(xs) & np.isfinite(med)
    if logx:
        keep &= xs > 0
    if logy:
        keep &= med > 0
        lo = np.where(lo > 0, lo, np.nan)
    line, = ax.plot(xs[keep], med[keep], label=label, color=color, **line_kw)
    ax.fill_between(xs[keep], lo[keep], hi[keep], color=line.get_color(), alpha=alpha, linewidth=0)
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
