"""Data sets for the experiments: every set has ``max_i ||x_i|| = 1`` and exposes z_i = y_i x_i.

All sets are :class:`Dataset` objects, and every way of making one goes through
``Dataset.__post_init__``, which validates (and copies to float64) the arrays:

* :func:`toy` -- the toy set of Soudry et al. (2018), u_bar = (1, 1)/sqrt(2) known exactly;
* :func:`gaussian_separable` -- Gaussian inputs labelled by a random unit teacher, with a gap;
* :func:`sklearn_task` / :func:`sklearn_tasks` -- binary tasks from data bundled with
  scikit-learn (no download), checked for separability by :mod:`gdalign.margin`;
* :func:`flip_labels` -- label-flipped (typically non-separable) variants;
* :func:`load_file` -- a user's CSV or NPZ file;
* :func:`load_stored` / :func:`stored_sets` -- the small sets under ``data/``, checked
  against their recorded SHA-256.

:func:`make_dataset` is the constructor for raw arrays: it maps 0/1 labels to -1/+1 and
rescales so that max ||x_i|| = 1 before building the :class:`Dataset`.

Bad input (NaN or inf, labels outside two classes, a single class, empty or mismatched
arrays, a missing or unreadable file, an unsupported suffix) raises :class:`ValueError`
whose message names the problem and, where relevant, the file, line and column.

Example
-------
>>> ds = toy()
>>> ds.n, ds.d, float(abs(ds.X).max()) <= 1.0
(16, 2, True)
>>> ds.Z.shape
(16, 2)
>>> make_dataset([[3.0, 4.0], [0.0, -1.0]], [1, 0]).y
array([ 1., -1.])
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import numbers
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "make_dataset", "toy", "gaussian_separable", "SKLEARN_TASKS", "sklearn_tasks",
           "sklearn_task", "flip_labels", "load_file", "DATA_DIR", "stored_sets", "load_stored", "sha256_file"]

#: Tolerance on max ||x_i|| = 1 (relative), for data built elsewhere and passed to Dataset.
_NORM_RTOL = 1e-12


def _first_bad(mask: np.ndarray) -> tuple:
    idx = np.argwhere(mask)[0]
    return tuple(int(i) for i in idx)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled binary data set, normalised so that ``max_i ||x_i||_2 = 1``.

    Construction validates the arrays (this is the one place where every data set is
    checked) and stores float64 copies. Use :func:`make_dataset` to build one from raw
    arrays (0/1 labels, any scale).

    Attributes
    ----------
    X : ndarray of shape (n, d), float64
        Inputs, finite, with ``max_i ||x_i|| = 1`` (to a relative 1e-12).
    y : ndarray of shape (n,), float64
        Labels in {-1, +1}; both classes present.
    name : str
    source : str
        Where the data came from (generator and seed, file and checksum, preprocessing).
    meta : dict
        Extra facts (teacher, known u_bar, scale applied, flipped indices, ...).

    Raises
    ------
    ValueError
        If X is not 2-D or is empty, y is not 1-D of length n, an entry is NaN or inf,
        a label is not -1 or +1, only one class is present, or max ||x_i|| != 1.
    """

    X: np.ndarray
    y: np.ndarray
    name: str = "data"
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        who = self.name
        try:
            X = np.array(self.X, dtype=np.float64, copy=True)
            y = np.array(self.y, dtype=np.float64, copy=True)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{who}: X and y must be numeric arrays ({e})") from None
        if X.ndim != 2:
            raise ValueError(f"{who}: X must be a 2-D array of shape (n, d), got shape {X.shape}")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"{who}: X is empty (shape {X.shape}): need n >= 1 points and d >= 1 features")
        if y.ndim != 1:
            raise ValueError(f"{who}: y must be a 1-D array of labels, got shape {y.shape}")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"{who}: X and y have mismatched lengths: X has {X.shape[0]} rows, y has {y.shape[0]}")
        if not np.isfinite(X).all():
            i, j = _first_bad(~np.isfinite(X))
            raise ValueError(f"{who}: X contains NaN or inf (first at row {i}, column {j}: {X[i, j]})")
        if not np.isfinite(y).all():
            (i,) = _first_bad(~np.isfinite(y))
            raise ValueError(f"{who}: y contains NaN or inf (first at row {i}: {y[i]})")
        bad = (y != 1.0) & (y != -1.0)
        if bad.any():
            vals = sorted(set(np.unique(y[bad]).tolist()))[:5]
            raise ValueError(f"{who}: labels must be -1 or +1, found {vals} "
                             f"(make_dataset converts 0/1 labels)")
        if (y == 1.0).all() or (y == -1.0).all():
            raise ValueError(f"{who}: only one class (label {int(y[0]):+d}) is present; a binary task needs both")
        m = float(np.linalg.norm(X, axis=1).max())
        if abs(m - 1.0) > _NORM_RTOL:
            raise ValueError(f"{who}: max ||x_i|| is {m!r}, expected 1 "
                             f"(make_dataset rescales; the paper needs ||x_i|| <= 1)")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "meta", dict(self.meta))

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    @property
    def Z(self) -> np.ndarray:
        """z_i = y_i x_i, shape (n, d)."""
        return self.y[:, None] * self.X

    def __repr__(self) -> str:
        return f"Dataset(name={self.name!r}, n={self.n}, d={self.d}, source={self.source!r})"


def _labels_pm1(y, where: str) -> np.ndarray:
    """Labels as float64 -1/+1 from {-1, +1} or {0, 1} (booleans count as 0/1)."""
    y = np.asarray(y)
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise ValueError(f"{where}: labels must be a 1-D array, got shape {y.shape}")
    if y.size == 0:
        raise ValueError(f"{where}: no labels (empty array)")
    if y.dtype == bool:
        y = y.astype(np.float64)
    try:
        y = y.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: labels must be numbers (-1/+1 or 0/1), got dtype {y.dtype}") from None
    if not np.isfinite(y).all():
        (i,) = _first_bad(~np.isfinite(y))
        raise ValueError(f"{where}: label at row {i} is {y[i]}, not a finite number")
    vals = set(np.unique(y).tolist())
    if vals <= {-1.0, 1.0}:
        out = y
    elif vals <= {0.0, 1.0}:
        out = np.where(y == 1.0, 1.0, -1.0)
    else:
        shown = sorted(vals)[:6]
        raise ValueError(f"{where}: labels must be two classes coded -1/+1 or 0/1, found values {shown}"
                         + (" ..." if len(vals) > 6 else ""))
    if len(np.unique(out)) < 2:
        raise ValueError(f"{where}: only one class (label {out[0]:+g}) is present; a binary task needs both")
    return out


def make_dataset(X, y, name: str = "data", source: str = "", meta: dict | None = None) -> Dataset:
    """Build a :class:`Dataset` from raw arrays: labels to -1/+1, rescaled to max ||x_i|| = 1.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Inputs (any finite scale).
    y : array-like of shape (n,)
        Labels coded -1/+1 or 0/1 (0 becomes -1).
    name, source : str
        Stored on the Dataset; ``source`` should say where the data came from.
    meta : dict, optional
        Stored on the Dataset; ``meta["scale"]`` is set to the factor applied to X.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Naming the problem: see :class:`Dataset`; also if every x_i is zero.
    """
    try:
        Xa = np.array(X, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: X must be a numeric array ({e})") from None
    if Xa.ndim != 2:
        raise ValueError(f"{name}: X must be a 2-D array of shape (n, d), got shape {Xa.shape}")
    if Xa.size == 0:
        raise ValueError(f"{name}: X is empty (shape {Xa.shape}): need n >= 1 points and d >= 1 features")
    if not np.isfinite(Xa).all():
        i, j = _first_bad(~np.isfinite(Xa))
        raise ValueError(f"{name}: X contains NaN or inf (first at row {i}, column {j}: {Xa[i, j]})")
    ya = _labels_pm1(y, name)
    if ya.shape[0] != Xa.shape[0]:
        raise ValueError(f"{name}: X and y have mismatched lengths: X has {Xa.shape[0]} rows, y has {ya.shape[0]}")
    m = float(np.linalg.norm(Xa, axis=1).max())
    if m == 0.0:
        raise ValueError(f"{name}: every x_i is zero; cannot normalise to max ||x_i|| = 1")
    # already normalised to rounding: leave the bits alone (stored files round-trip exactly)
    scale = 1.0 if abs(m - 1.0) <= 4 * np.finfo(float).eps else 1.0 / m
    meta = dict(meta or {})
    meta.setdefault("scale", scale)
    return Dataset(Xa * scale if scale != 1.0 else Xa, ya, name=name, source=source, meta=meta)


def _check_int(name: str, v, lo: int, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {v!r}")
    v = int(v)
    if v < lo or (hi is not None and v > hi):
        raise ValueError(f"{name} = {v} is out of range: expected an integer in [{lo}, {hi if hi is not None else 'inf'}]")
    return v


def toy(n_extra: int = 12, seed: int = 0) -> Dataset:
    """The toy set of Soudry et al. (2018), rescaled so that max ||x_i|| = 1.

    Support points x1 = (0.5, 1.5), x2 = (1.5, 0.5) (label +1) and -x1, -x2 (label -1),
    plus ``n_extra`` random points strictly off the margin, so the max-margin direction
    is u_bar = (1, 1)/sqrt(2) with margin sqrt(2) before rescaling.

    Why u_bar is exact: for the support points z = (0.5, 1.5) and (1.5, 0.5),
    min(<u, z>) over unit u is maximised by symmetry at u = (1, 1)/sqrt(2) with value
    sqrt(2), and u_bar is a strictly positive combination of the two (both duals > 0);
    every extra point has <u_bar, z> >= 1.25 sqrt(2) > sqrt(2), so adding it leaves the
    optimum in place. ``meta`` holds ``u_bar`` and ``gamma`` = sqrt(2) * scale.

    Parameters
    ----------
    n_extra : int, default 12
        Number of random points off the margin (uniform in [-2.5, 2.5]^2, kept when
        |<u_bar, x>| >= 1.25 sqrt(2), labelled by the sign).
    seed : int, default 0

    Returns
    -------
    Dataset with n = 4 + n_extra, d = 2.
    """
    n_extra = _check_int("n_extra", n_extra, 0)
    rng = np.random.default_rng(seed)
    u = np.array([1.0, 1.0]) / np.sqrt(2.0)
    xs = [np.array([0.5, 1.5]), np.array([1.5, 0.5])]
    X = [xs[0], xs[1], -xs[0], -xs[1]]
    y = [1.0, 1.0, -1.0, -1.0]
    while len(X) < 4 + n_extra:
        x = rng.uniform(-2.5, 2.5, size=2)
        m = float(x @ u)
        if abs(m) >= 1.25 * np.sqrt(2.0):  # strictly off the margin: u_bar stays the max-margin direction
            X.append(x)
            y.append(np.sign(m))
    X = np.array(X)
    scale = 1.0 / np.linalg.norm(X, axis=1).max()
    X = X * scale
    meta = {"u_bar": u, "gamma": float(np.sqrt(2.0) * scale), "scale": float(scale), "support": [0, 1, 2, 3]}
    return Dataset(X, np.array(y), name="toy",
                   source=f"Soudry et al. (2018) toy set, {n_extra} extra points, seed {seed}", meta=meta)


def gaussian_separable(n: int, d: int, seed: int = 0, margin_gap: float = 0.1) -> Dataset:
    """Gaussian inputs labelled by a random unit teacher, with a gap around its hyperplane.

    Draw a unit teacher u* (normalised standard Gaussian), then x ~ N(0, I_d) in batches,
    keeping x only when |<u*, x>| >= ``margin_gap`` (before normalising), until n points
    are kept; y = sign(<u*, x>). If all n kept points share a class (probability 2^(1-n))
    the draw is repeated from the same generator. Finally X is rescaled to max ||x_i|| = 1.

    The data are separable through the origin by construction (u* has margin at least
    ``margin_gap * scale``), but the max-margin direction u_bar generally differs from u*.

    Parameters
    ----------
    n : int >= 2
    d : int >= 1
    seed : int, default 0
        The same seed gives bit-identical data.
    margin_gap : float, default 0.1
        delta >= 0; the acceptance rate P(|N(0,1)| >= delta) must be at least 1e-3
        (delta <= 3.29).

    Returns
    -------
    Dataset with ``meta["teacher"]`` (d,) and ``meta["margin_gap"]``.

    Example
    -------
    >>> ds = gaussian_separable(50, 3, seed=1)
    >>> ds.n, ds.d
    (50, 3)
    >>> bool((ds.Z @ ds.meta["teacher"] > 0).all())
    True
    """
    n = _check_int("n", n, 2)
    d = _check_int("d", d, 1)
    if isinstance(margin_gap, bool) or not isinstance(margin_gap, numbers.Real) or not math.isfinite(margin_gap) \
            or margin_gap < 0:
        raise ValueError(f"margin_gap must be a finite number >= 0, got {margin_gap!r}")
    accept = math.erfc(margin_gap / math.sqrt(2.0))
    if accept < 1e-3:
        raise ValueError(f"margin_gap = {margin_gap} keeps only a fraction {accept:.2e} of Gaussian draws; "
                         f"use margin_gap <= 3.29")
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    batch = max(64, int(math.ceil(2 * n / accept)))
    while True:
        kept: list[np.ndarray] = []
        count = 0
        while count < n:
            x = rng.standard_normal((batch, d))
            x = x[np.abs(x @ u) >= margin_gap]
            kept.append(x)
            count += x.shape[0]
        X = np.concatenate(kept)[:n]
        y = np.where(X @ u > 0, 1.0, -1.0)
        if (y > 0).any() and (y < 0).any():
            break
    return make_dataset(X, y, name=f"gaussian-n{n}-d{d}",
                        source=f"gaussian_separable(n={n}, d={d}, seed={seed}, margin_gap={margin_gap}): "
                               f"N(0, I) inputs, random unit teacher, |<u*, x>| >= margin_gap before rescaling",
                        meta={"teacher": u, "margin_gap": float(margin_gap), "seed": seed})


# --------------------------------------------------------------------------------------------
# Real data bundled with scikit-learn

#: The binary tasks: loader, positive and negative classes, default preprocessing, note.
SKLEARN_TASKS: dict[str, dict] = {
    "iris-setosa": dict(loader="load_iris", pos=[0], neg=[1, 2], preprocess="standardize",
                        description="iris: setosa (+1) vs versicolor and virginica (-1)"),
    "digits-0-1": dict(loader="load_digits", pos=[0], neg=[1], preprocess="standardize",
                       description="digits (8x8): 0 (+1) vs 1 (-1)"),
    "wine-0-1": dict(loader="load_wine", pos=[0], neg=[1], preprocess="standardize",
                     description="wine: cultivar 0 (+1) vs cultivar 1 (-1)"),
    "breast-cancer": dict(loader="load_breast_cancer", pos=[0], neg=[1], preprocess="scale",
                          description="breast cancer (Wisconsin): malignant (+1) vs benign (-1); separable "
                                      "through the origin only without centring, with a tiny margin"),
    "iris-versicolor-virginica": dict(loader="load_iris", pos=[1], neg=[2], preprocess="standardize",
                                      description="iris: versicolor (+1) vs virginica (-1); NOT linearly "
                                                  "separable (a real non-separable example)"),
}

_PREPROCESS = {
    "standardize": "centred at the feature means and divided by the feature standard deviations",
    "scale": "not centred; each feature divided by its root mean square",
    "none": "raw features",
}


def sklearn_task(name: str, preprocess: str | None = None) -> Dataset:
    """A binary task from a data set bundled with scikit-learn (nothing is downloaded).

    The model has no intercept, so a separator must pass through the origin, and the
    preprocessing matters:

    * Scaling each feature (any invertible linear map) does **not** change whether the
      set is separable through the origin, but it does change u_bar and gamma. Features
      in different units (wine: proline ~ 1000, hue ~ 1) would otherwise dominate both,
      and gamma becomes tiny (wine-0-1 raw: ~4e-5; standardised: ~0.07).
    * Centring **does** change separability: it moves the origin to the data mean, so
      "separable through the origin" becomes "separable by a hyperplane through the
      mean". The raw features here are non-negative (lengths, pixel intensities), so
      without centring all points lie in one orthant, away from the origin.

    The default is therefore ``"standardize"`` (centre, divide by the standard deviation,
    drop constant features, e.g. the always-blank pixels of digits), except for
    ``breast-cancer``, which is separable through the origin only without centring and
    defaults to ``"scale"`` (divide by the root mean square, no centring). Whatever the
    choice, the set is then rescaled to max ||x_i|| = 1, and the preprocessing is recorded
    in ``source`` and ``meta``. Separability is not assumed: :func:`sklearn_tasks` with
    ``check=True`` runs the exact max-margin solver on each task.

    Parameters
    ----------
    name : str
        One of :data:`SKLEARN_TASKS` (see :func:`sklearn_tasks`).
    preprocess : {"standardize", "scale", "none"}, optional
        Defaults to the task's own choice.

    Returns
    -------
    Dataset; ``meta`` holds the task, preprocessing, kept feature names and the
    centre/scale vectors applied.

    Example
    -------
    >>> ds = sklearn_task("iris-setosa")
    >>> ds.n, ds.d, int((ds.y > 0).sum())
    (150, 4, 50)
    """
    if name not in SKLEARN_TASKS:
        raise ValueError(f"unknown scikit-learn task {name!r}; choose one of {sorted(SKLEARN_TASKS)}")
    task = SKLEARN_TASKS[name]
    preprocess = task["preprocess"] if preprocess is None else preprocess
    if preprocess not in _PREPROCESS:
        raise ValueError(f"preprocess must be one of {sorted(_PREPROCESS)}, got {preprocess!r}")
    import sklearn
    from sklearn import datasets as skd

    bunch = getattr(skd, task["loader"])()
    X0, t = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target)
    feat = [str(f) for f in getattr(bunch, "feature_names", [f"x{j}" for j in range(X0.shape[1])])]
    keep_rows = np.isin(t, task["pos"] + task["neg"])
    X0, t = X0[keep_rows], t[keep_rows]
    y = np.where(np.isin(t, task["pos"]), 1.0, -1.0)
    centre = np.zeros(X0.shape[1])
    if preprocess == "standardize":
        centre = X0.mean(axis=0)
        sd = X0.std(axis=0)
    elif preprocess == "scale":
        sd = np.sqrt((X0 ** 2).mean(axis=0))
    else:
        sd = np.ones(X0.shape[1])
    cols = sd > 0 if preprocess != "none" else np.ones(X0.shape[1], bool)
    X = (X0[:, cols] - centre[cols]) / sd[cols]
    dropped = int((~cols).sum())
    names = list(getattr(bunch, "target_names", []))
    cls = lambda ids: ", ".join(f"{i} ({names[i]})" if i < len(names) else str(i) for i in ids)  # noqa: E731
    src = (f"scikit-learn {sklearn.__version__} datasets.{task['loader']}() (bundled, no download); "
           f"+1 = class {cls(task['pos'])}, -1 = class {cls(task['neg'])}; "
           f"preprocessing '{preprocess}': {_PREPROCESS[preprocess]}"
           + (f", {dropped} constant feature(s) dropped" if dropped else "")
           + "; then rescaled so max ||x_i|| = 1")
    meta = {"task": name, "preprocess": preprocess, "features": [f for f, k in zip(feat, cols) if k],
            "centre": centre[cols], "feature_scale": sd[cols], "dropped_features": dropped}
    return make_dataset(X, y, name=name, source=src, meta=meta)


def sklearn_tasks(check: bool = False):
    """The available scikit-learn tasks, as a pandas DataFrame (one row per task).

    Columns: ``name``, ``description``, ``preprocess``, ``n``, ``d``; with
    ``check=True`` also the solver's verdict: ``separable``, ``gamma``, ``n_support``,
    ``rank_support``, ``assumption3``, ``alpha`` (NaN where not separable).

    Example
    -------
    >>> t = sklearn_tasks(check=True).set_index("name")
    >>> bool(t.loc["iris-setosa", "separable"]), bool(t.loc["iris-versicolor-virginica", "separable"])
    (True, False)
    """
    import pandas as pd

    rows = []
    for name, task in SKLEARN_TASKS.items():
        ds = sklearn_task(name)
        row = {"name": name, "description": task["description"], "preprocess": task["preprocess"],
               "n": ds.n, "d": ds.d}
        if check:
            from .margin import max_margin

            try:
                r = max_margin(ds)
                row.update(separable=True, gamma=r.gamma, n_support=len(r.support), rank_support=r.rank_support,
                           assumption3=r.assumption3, alpha=r.alpha)
            except ValueError:
                row.update(separable=False, gamma=math.nan, n_support=0, rank_support=0, assumption3=False,
                           alpha=math.nan)
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Non-separable variants

def flip_labels(ds: Dataset, fraction: float | None = None, *, indices=None, seed: int = 0) -> Dataset:
    """A copy of ``ds`` with some labels flipped (z_i -> -z_i), for non-separable variants.

    Give exactly one of ``fraction`` (flip round(fraction * n) >= 1 points chosen at
    random with ``seed``) or ``indices`` (flip exactly these rows). Flipping does not by
    itself guarantee non-separability (flipping one point far from the others can leave
    the set separable in another direction): check with
    :func:`gdalign.margin.is_separable`.

    Returns
    -------
    Dataset named ``<name>-flipped`` with ``meta["flipped"]`` the sorted flipped rows.

    Example
    -------
    >>> from gdalign.margin import is_separable
    >>> bad = flip_labels(toy(), indices=[0])
    >>> is_separable(bad)
    False
    """
    if not isinstance(ds, Dataset):
        raise ValueError(f"flip_labels needs a Dataset, got {type(ds).__name__}")
    if (fraction is None) == (indices is None):
        raise ValueError("flip_labels: give exactly one of fraction or indices")
    if fraction is not None:
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not (0 < fraction <= 1):
            raise ValueError(f"flip_labels: fraction must be a number in (0, 1], got {fraction!r}")
        k = max(1, int(round(fraction * ds.n)))
        idx = np.sort(np.random.default_rng(seed).choice(ds.n, size=k, replace=False))
        how = f"fraction {fraction} (seed {seed})"
    else:
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"flip_labels: indices must be a non-empty 1-D list of integers, got {indices!r}")
        if (idx < 0).any() or (idx >= ds.n).any():
            raise ValueError(f"flip_labels: indices must lie in [0, {ds.n - 1}], got {idx.tolist()}")
        if len(np.unique(idx)) != idx.size:
            raise ValueError(f"flip_labels: indices repeat: {idx.tolist()}")
        idx = np.sort(idx)
        how = "given indices"
    y = ds.y.copy()
    y[idx] = -y[idx]
    shown = idx.tolist() if idx.size <= 20 else idx[:20].tolist() + ["..."]
    meta = dict(ds.meta, flipped=idx.tolist(), parent=ds.name)
    for k in ("u_bar", "gamma", "support"):  # the known answer no longer applies
        meta.pop(k, None)
    return Dataset(ds.X, y, name=f"{ds.name}-flipped",
                   source=f"{ds.source}; labels of {idx.size} point(s) flipped ({how}): rows {shown}", meta=meta)


# --------------------------------------------------------------------------------------------
# Files

def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _read_csv(p: Path, text: str):
    rows = [(k + 1, r) for k, r in enumerate(csv.reader(io.StringIO(text)))
            if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    if not rows:
        raise ValueError(f"{p}: the file has no rows")
    first_line, first = rows[0]
    header = None
    if not all(_is_number(c.strip()) for c in first):
        header = [c.strip() for c in first]
        rows = rows[1:]
        if len(set(h.lower() for h in header)) != len(header):
            raise ValueError(f"{p}: the header repeats a column name: {header}")
    if not rows:
        raise ValueError(f"{p}: the file has a header but no data rows")
    ncol = len(header) if header is not None else len(rows[0][1])
    if ncol < 2:
        raise ValueError(f"{p}: need at least one feature column and a label column, found {ncol} column(s)")
    names = header if header is not None else [f"column {j + 1}" for j in range(ncol)]
    lab = [j for j, h in enumerate(names) if header is not None and h.lower() in ("y", "label")]
    if len(lab) > 1:
        raise ValueError(f"{p}: both 'y' and 'label' columns are present; keep one")
    lab = lab[0] if lab else ncol - 1
    vals = np.empty((len(rows), ncol))
    for r, (line, row) in enumerate(rows):
        if len(row) != ncol:
            raise ValueError(f"{p}, line {line}: {len(row)} values, expected {ncol}")
        for j, c in enumerate(row):
            try:
                v = float(c)
            except ValueError:
                raise ValueError(f"{p}, line {line}, column {names[j]!r}: {c.strip()!r} is not a number") from None
            if not math.isfinite(v):
                raise ValueError(f"{p}, line {line}, column {names[j]!r}: value {c.strip()!r} is NaN or inf")
            vals[r, j] = v
    feat = [j for j in range(ncol) if j != lab]
    return vals[:, feat], vals[:, lab], names[lab], [names[j] for j in feat]


def load_file(path, name: str | None = None) -> Dataset:
    """Load a user's data set from a CSV or NPZ file, rescaled to max ||x_i|| = 1.

    * ``.csv``: comma-separated numbers, one point per line; an optional header line
      (detected when a cell of the first line is not a number); lines starting with
      ``#`` and blank lines are skipped. The label is the column named ``y`` or ``label``
      (case-insensitive) if the header has one, otherwise the last column.
    * ``.npz``: arrays ``X`` (n, d) and ``y`` (n,).

    Labels are -1/+1 or 0/1 (0 becomes -1).

    Parameters
    ----------
    path : str or Path
    name : str, optional
        Defaults to the file's stem.

    Returns
    -------
    Dataset whose ``source`` names the file and its SHA-256.

    Raises
    ------
    ValueError
        Missing or unreadable file, unsupported suffix, malformed rows, non-numbers,
        NaN/inf, bad labels or a single class: the message names the file (and the line
        and column for CSV).

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "mine.csv")
    >>> _ = open(p, "w").write("a,b,label\\n1,2,1\\n-2,0.5,0\\n")
    >>> ds = load_file(p)
    >>> ds.y.tolist(), ds.d
    ([1.0, -1.0], 2)
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".npz"):
        raise ValueError(f"{p}: unsupported file type {p.suffix or '(no suffix)'!r}; expected .csv or .npz")
    if not p.exists():
        raise ValueError(f"{p}: file not found")
    if not p.is_file():
        raise ValueError(f"{p}: not a regular file")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ValueError(f"{p}: cannot read file ({e.strerror or e})") from None
    digest = hashlib.sha256(raw).hexdigest()
    name = name or p.stem
    if suffix == ".csv":
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError(f"{p}: not a UTF-8 text CSV file") from None
        X, y, ycol, feats = _read_csv(p, text)
        y = _labels_pm1(y, f"{p}, label column {ycol!r}")
        meta = {"file": p.name, "sha256": digest, "label_column": ycol, "features": feats}
    else:
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                keys = list(z.keys())
                if "X" not in keys or "y" not in keys:
                    raise ValueError(f"{p}: an .npz data file must hold arrays 'X' and 'y'; found {keys}")
                X, y = z["X"], z["y"]
        except ValueError as e:
            if str(e).startswith(str(p)):
                raise
            raise ValueError(f"{p}: cannot read the .npz arrays ({e})") from None
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise ValueError(f"{p}: not a valid .npz file ({e})") from None
        if X.ndim != 2:
            raise ValueError(f"{p}: array 'X' must be 2-D (n, d), got shape {X.shape}")
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
            raise ValueError(f"{p}: array 'X' must be numeric, got dtype {X.dtype}")
        y = _labels_pm1(y, f"{p}, array 'y'")
        meta = {"file": p.name, "sha256": digest}
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{p}: X and y have mismatched lengths: {X.shape[0]} rows of X, {y.shape[0]} labels")
    if X.size == 0:
        raise ValueError(f"{p}: X is empty (shape {X.shape})")
    if not np.isfinite(X).all():
        i, j = _first_bad(~np.isfinite(X))
        raise ValueError(f"{p}: X contains NaN or inf (first at row {i}, column {j})")
    return make_dataset(X, y, name=name, source=f"file {p.name} (sha256 {digest})", meta=meta)


#: The folder of stored input sets (``data/`` at the repository root).
DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def _recorded_sums(root: Path) -> dict[str, str]:
    sums = root / "SHA256SUMS"
    if not sums.is_file():
        raise ValueError(f"{sums}: checksum list not found")
    out = {}
    for k, line in enumerate(sums.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ValueError(f"{sums}, line {k}: expected '<sha256>  <file>', got {line!r}")
        out[parts[1].lstrip("*")] = parts[0].lower()
    return out


def stored_sets(root=None) -> list[str]:
    """Names (file stems) of the stored input sets listed in ``data/SHA256SUMS``."""
    return sorted(Path(f).stem for f in _recorded_sums(Path(root) if root else DATA_DIR))


def load_stored(name: str, root=None) -> Dataset:
    """Load a stored set from ``data/`` after checking its SHA-256 against ``data/SHA256SUMS``.

    Raises
    ------
    ValueError
        If the set is not listed, the file is missing, or its checksum differs.

    Example
    -------
    >>> ds = load_stored("toy")
    >>> bool((ds.X == toy().X).all())
    True
    """
    root = Path(root) if root else DATA_DIR
    sums = _recorded_sums(root)
    files = {Path(f).stem: f for f in sums}
    if name not in files:
        raise ValueError(f"no stored set {name!r}; stored sets: {sorted(files)}")
    p = root / files[name]
    if not p.is_file():
        raise ValueError(f"{p}: stored set listed in SHA256SUMS but the file is missing")
    got = sha256_file(p)
    if got != sums[files[name]]:
        raise ValueError(f"{p}: SHA-256 {got} does not match the recorded {sums[files[name]]}; "
                         f"the file has changed (see data/README.md)")
    ds = load_file(p, name=name)
    return Dataset(ds.X, ds.y, name=name, source=f"stored set data/{files[name]} (sha256 {got}, verified)",
                   meta=ds.meta)
