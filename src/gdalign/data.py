"""Data sets for the experiments: every set has max ||x_i|| = 1 and exposes z_i = y_i x_i.

(Owned by the data/margin work; this first version holds the container and the toy set.)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled binary data set, normalised so that ``max_i ||x_i||_2 = 1``.

    Attributes
    ----------
    X : ndarray of shape (n, d), float64
    y : ndarray of shape (n,), float64 with values in {-1, +1}
    name : str
    source : str
        Where the data came from (generator and seed, file and checksum, ...).
    """

    X: np.ndarray
    y: np.ndarray
    name: str = "data"
    source: str = ""
    meta: dict = field(default_factory=dict)

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


def toy(n_extra: int = 12, seed: int = 0) -> Dataset:
    """The toy set of Soudry et al. (2018), rescaled so that max ||x_i|| = 1.

    Support points x1 = (0.5, 1.5), x2 = (1.5, 0.5) (label +1) and -x1, -x2 (label -1),
    plus ``n_extra`` random points strictly off the margin, so the max-margin direction
    is u_bar = (1, 1)/sqrt(2) with margin sqrt(2) before rescaling.
    """
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
    X = X / np.linalg.norm(X, axis=1).max()
    return Dataset(X, np.array(y), name="toy", source=f"Soudry et al. (2018) toy set, {n_extra} extra points, seed {seed}")
