"""Progress bars for long runs that stay silent under papermill and CI.

A bar shows only in an interactive terminal or notebook session: it is off when
``CI`` is set, when ``GDALIGN_PROGRESS=0`` (``gdalign run``/``gdalign book`` set it for
the papermill kernels), or when the caller passes ``enabled=False``.
"""
from __future__ import annotations

import os

from tqdm import tqdm  # tqdm.auto would warn 'IProgress not found' in kernels without ipywidgets


def progress_enabled() -> bool:
    if os.environ.get("GDALIGN_PROGRESS", "1") == "0" or os.environ.get("CI"):
        return False
    return True


def bar(iterable=None, total=None, desc: str = "", enabled: bool | None = None, **kw):
    """A tqdm bar (or a silent pass-through) over ``iterable`` / ``total`` steps."""
    on = progress_enabled() if enabled is None else enabled
    return tqdm(iterable, total=total, desc=desc, disable=not on, leave=False, **kw)
