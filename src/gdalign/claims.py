"""Claims: a stated property of a recorded run, checked, with a verdict record.

Every notebook keeps one :class:`Ledger`. Each check appends a :class:`Verdict`
(claim id, statement, paper reference, measured value, threshold, passed, and
whether the claim was *expected* to hold or, in a counterexample, to fail). The
ledger is written to ``results.json`` next to the executed notebook; the book's
Claims page and ``gdalign claims`` read those files, and the build fails when a
verdict is out of order (``passed`` differs from ``expected == "hold"``).

Three forms cover the paper:

* :meth:`Ledger.check` -- one number against one threshold;
* :meth:`Ledger.at_every_record` -- an inequality that must hold at every record
  (monotone risk, ``gap_k <= D``, Lemma 2's bound); the measured value is the
  worst slack;
* :meth:`Ledger.in_the_limit` -- a quantity that must tend to 0: below ``eps`` at
  the end of the run *and* decreasing in trend over its last part.

Example
-------
>>> led = Ledger("demo")
>>> v = led.check("risk_small", "R at the end is below 1e-10", "Theorem 1 (i)",
...               measured=1e-30, threshold=1e-10, op="<=")
>>> v.passed, v.in_order
(True, True)
"""
from __future__ import annotations

import functools
import json
import math
import operator
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}
EXPECTED = ("hold", "fail")


class ClaimOutOfOrder(AssertionError):
    """Raised by :meth:`Ledger.raise_if_out_of_order` when a verdict is not as expected."""


@dataclass
class Verdict:
    """One checked claim. ``in_order`` is True when the outcome is the expected one."""

    id: str
    statement: str
    paper_ref: str
    measured: float | None
    threshold: float | None
    op: str
    passed: bool
    expected: str = "hold"
    note: str = ""
    notebook: str = ""

    @property
    def in_order(self) -> bool:
        return self.passed == (self.expected == "hold")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["measured"] = _jsonable(self.measured)
        d["threshold"] = _jsonable(self.threshold)
        d["in_order"] = self.in_order
        return d


def _jsonable(x: Any) -> Any:
    """Plain JSON value: floats stay floats, non-finite floats become strings."""
    if isinstance(x, (np.generic,)):
        x = x.item()
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:  # 0-d tensor or array
        x = x.item()
    if isinstance(x, bool) or x is None or isinstance(x, (int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else repr(x)
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in (x.tolist() if isinstance(x, np.ndarray) else x)]
    return str(x)


def _check_expected(expected: str) -> None:
    if expected not in EXPECTED:
        raise ValueError(f"expected must be one of {EXPECTED}, got {expected!r}")


class Ledger:
    """The verdicts of one notebook run, plus the numbers and parameters it reports.

    Parameters
    ----------
    notebook : str
        Name of the notebook (stem of the .ipynb) the verdicts belong to.
    """

    def __init__(self, notebook: str):
        self.notebook = notebook
        self.verdicts: list[Verdict] = []
        self.numbers: dict[str, Any] = {}
        self._t0 = time.perf_counter()

    # -- the three forms -------------------------------------------------------------
    def check(self, id: str, statement: str, paper_ref: str, measured: float, threshold: float,
              op: str = "<=", expected: str = "hold", note: str = "") -> Verdict:
        """``measured op threshold`` -> a verdict. NaN measured values never pass."""
        _check_expected(expected)
        if op not in _OPS:
            raise ValueError(f"op must be one of {sorted(_OPS)}, got {op!r}")
        if any(v.id == id for v in self.verdicts):
            raise ValueError(f"claim id {id!r} is already in the ledger of {self.notebook!r}")
        m = float(measured)
        t = float(threshold)
        passed = (not math.isnan(m)) and bool(_OPS[op](m, t))
        v = Verdict(id, statement, paper_ref, m, t, op, passed, expected, note, self.notebook)
        self.verdicts.append(v)
        return v

    def at_every_record(self, id: str, statement: str, paper_ref: str, lhs: Sequence[float] | np.ndarray,
                        rhs: Sequence[float] | np.ndarray | float, op: str = "<=", tol: float = 0.0,
                        expected: str = "hold", note: str = "") -> Verdict:
        """``lhs[j] op rhs[j] (+/- tol)`` at every record j.

        The measured value is the worst signed slack: ``max(lhs - rhs)`` for ``<=`` / ``<``
        and ``max(rhs - lhs)`` for ``>=`` / ``>``; the threshold is ``tol`` (numerical
        tolerance, which the caller states and justifies). NaNs count as violations.
        """
        lhs_a = np.asarray(lhs, dtype=float).ravel()
        rhs_a = np.broadcast_to(np.asarray(rhs, dtype=float), np.asarray(lhs).shape).ravel()
        if lhs_a.size == 0:
            raise ValueError(f"claim {id!r}: no records to check")
        if op in ("<=", "<"):
            slack = lhs_a - rhs_a
        elif op in (">=", ">"):
            slack = rhs_a - lhs_a
        else:
            raise ValueError(f"op must be one of <=, <, >=, >; got {op!r}")
        worst = float(np.inf) if np.isnan(slack).any() else float(slack.max())
        strict = op in ("<", ">")
        return self.check(id, statement, paper_ref, worst, tol, "<" if strict else "<=", expected,
                          note or f"worst slack over {lhs_a.size} records")

    def in_the_limit(self, id: str, statement: str, paper_ref: str, progress: Sequence[float] | np.ndarray,
                     values: Sequence[float] | np.ndarray, eps: float, tail: float = 0.5,
                     expected: str = "hold", note: str = "") -> Verdict:
        """``values -> 0`` along ``progress`` (e.g. 1 - r_k against ln(1/R)).

        Passes when the last value is below ``eps`` **and** the values decrease in
        trend over the last ``tail`` fraction of the records: the least-squares slope
        of log(values) against progress there is negative (values already at 0 count
        as decreasing). The measured value is the last value; the trend slope is
        kept in the note and in the ledger's numbers.
        """
        x = np.asarray(progress, dtype=float).ravel()
        y = np.asarray(values, dtype=float).ravel()
        if x.shape != y.shape or x.size < 3:
            raise ValueError(f"claim {id!r}: need >= 3 matching records, got {x.size} and {y.size}")
        k = max(3, int(round(tail * x.size)))
        xs, ys = x[-k:], np.abs(y[-k:])
        if np.isnan(ys).any():
            slope = float("nan")
        elif np.all(ys <= 1e-300):
            slope = -float("inf")
        else:
            ly = np.log(np.maximum(ys, 1e-300))
            slope = float(np.polyfit(xs - xs.mean(), ly, 1)[0]) if np.ptp(xs) > 0 else float("nan")
        last = float(y[-1])
        decreasing = slope < 0
        _check_expected(expected)
        if any(v.id == id for v in self.verdicts):
            raise ValueError(f"claim id {id!r} is already in the ledger of {self.notebook!r}")
        passed = bool(np.isfinite(last) and abs(last) <= eps and decreasing)
        v = Verdict(id, statement, paper_ref, last, float(eps), "<=", passed, expected,
                    (note + "; " if note else "") + f"trend slope of log value over the last {k} records: {slope:.3g}",
                    self.notebook)
        self.verdicts.append(v)
        self.numbers[f"{id}__trend_slope"] = slope
        return v

    # -- reporting ---------------------------------------------------------------------
    def record(self, **numbers: Any) -> None:
        """Keep key numbers for results.json (and for glue in the notebook)."""
        self.numbers.update(numbers)

    @property
    def all_in_order(self) -> bool:
        return all(v.in_order for v in self.verdicts)

    def table(self):
        """The verdicts as a pandas DataFrame, one row per claim."""
        import pandas as pd

        rows = [{"claim": v.id, "paper": v.paper_ref, "statement": v.statement, "measured": v.measured,
                 "op": v.op, "threshold": v.threshold, "expected": v.expected, "passed": v.passed,
                 "verdict": verdict_word(v)} for v in self.verdicts]
        return pd.DataFrame(rows)

    def raise_if_out_of_order(self) -> None:
        bad = [v for v in self.verdicts if not v.in_order]
        if bad:
            lines = "\n".join(f"  {v.id} ({v.paper_ref}): measured {v.measured:.6g} {v.op} {v.threshold:.6g} "
                              f"passed={v.passed}, expected to {v.expected}" for v in bad)
            raise ClaimOutOfOrder(f"{len(bad)} claim(s) of {self.notebook} not as expected:\n{lines}")

    def save(self, path: str | os.PathLike = "results.json", parameters: dict | None = None) -> Path:
        """Write results.json atomically (temp file + rename): never half a file."""
        doc = {
            "notebook": self.notebook,
            "claims": [v.to_dict() for v in self.verdicts],
            "all_in_order": self.all_in_order,
            "numbers": _jsonable(self.numbers),
            "parameters": _jsonable(parameters or {}),
            "provenance": provenance(wall_time_s=time.perf_counter() - self._t0),
        }
        return atomic_write_json(path, doc)


def verdict_word(v: Verdict) -> str:
    """Human verdict: 'held', 'failed as expected', or the out-of-order cases."""
    if v.expected == "hold":
        return "held" if v.passed else "FAILED"
    return "failed as expected" if not v.passed else "HELD (expected to fail)"


def atomic_write_json(path: str | os.PathLike, doc: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are for every reader
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _git_commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src", "notebooks"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


_PACKAGES = ("gdalign", "torch", "numpy", "scipy", "pandas", "scikit-learn", "quadprog", "matplotlib", "seaborn",
             "papermill")


@functools.lru_cache(maxsize=None)
def _package_versions(packages: tuple[str, ...]) -> dict:
    """Installed versions (read once per process: a metadata scan costs ~10 ms)."""
    from importlib import metadata

    versions = {}
    for p in packages:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    return versions


def provenance(wall_time_s: float | None = None, packages: Iterable[str] = _PACKAGES) -> dict:
    """Commit, package versions, Python and platform, and the wall time of the run."""
    return {
        "commit": _git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": dict(_package_versions(tuple(packages))),
        "wall_time_s": None if wall_time_s is None else round(float(wall_time_s), 3),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def load_results(path: str | os.PathLike) -> dict:
    """Read a results.json written by :meth:`Ledger.save`."""
    with open(path) as f:
        return json.load(f)
