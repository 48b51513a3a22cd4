"""Validation of notebook parameters: a bad value stops the run with a message naming
the parameter and what it accepts.

Each notebook's ``parameters`` cell is followed by one call::

    P = validate(dict(depth=depth, loss=loss, seeds=seeds), {
        "depth": Int(1, 12),
        "loss": OneOf(["exp", "logistic", "poly"]),
        "seeds": Int(1, 4096),
    })

Unknown parameter *names* (a typo passed with ``-p``) are caught before execution by
``gdalign run``, which compares them with the notebook's parameters cell.

Example
-------
>>> validate({"depth": 4}, {"depth": Int(1, 12)})
{'depth': 4}
>>> validate({"depth": 0}, {"depth": Int(1, 12)})  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
...
gdalign.params.ParameterError: parameter 'depth' = 0 is out of range: expected an integer in [1, 12]
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence


class ParameterError(ValueError):
    """A notebook or API parameter has a bad value; the message names it."""


class Rule:
    def __call__(self, name: str, value: Any) -> Any:  # returns the (normalised) value
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def _fail(self, name: str, value: Any, why: str) -> None:
        raise ParameterError(f"parameter {name!r} = {value!r} is {why}: expected {self.describe()}")


@dataclass
class Int(Rule):
    lo: int | None = None
    hi: int | None = None

    def describe(self) -> str:
        return f"an integer in [{self.lo if self.lo is not None else '-inf'}, {self.hi if self.hi is not None else 'inf'}]"

    def __call__(self, name, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                self._fail(name, value, "not an integer")
        value = int(value)
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            self._fail(name, value, "out of range")
        return value


@dataclass
class Float(Rule):
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False

    def describe(self) -> str:
        lb = "(" if self.lo_open else "["
        return f"a finite number in {lb}{self.lo if self.lo is not None else '-inf'}, {self.hi if self.hi is not None else 'inf'}]"

    def __call__(self, name, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            self._fail(name, value, "not a number")
        value = float(value)
        if not math.isfinite(value):
            self._fail(name, value, "not finite")
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            self._fail(name, value, "out of range")
        if self.hi is not None and value > self.hi:
            self._fail(name, value, "out of range")
        return value


@dataclass
class OneOf(Rule):
    choices: Sequence[Any]

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def __call__(self, name, value):
        if value not in list(self.choices):
            self._fail(name, value, "not allowed")
        return value


@dataclass
class ListOf(Rule):
    item: Rule
    min_len: int = 1
    max_len: int | None = None

    def describe(self) -> str:
        n = f"{self.min_len}..{self.max_len if self.max_len is not None else ''}"
        return f"a list ({n} items) of {self.item.describe()}"

    def __call__(self, name, value):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            self._fail(name, value, "not a list")
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            self._fail(name, value, f"a list of length {len(value)}")
        return [self.item(f"{name}[{i}]", v) for i, v in enumerate(value)]


@dataclass
class Bool(Rule):
    def describe(self) -> str:
        return "True or False"

    def __call__(self, name, value):
        if not isinstance(value, bool):
            self._fail(name, value, "not a boolean")
        return value


@dataclass
class OptionalFile(Rule):
    """A path to an existing file with one of the given suffixes, or '' for none."""

    suffixes: Sequence[str] = (".csv", ".npz")

    def describe(self) -> str:
        return "'' (none) or the path of an existing " + "/".join(self.suffixes) + " file"

    def __call__(self, name, value):
        if value in ("", None):
            return ""
        if not isinstance(value, (str, Path)):
            self._fail(name, value, "not a path")
        p = Path(value).expanduser()
        if p.suffix.lower() not in self.suffixes:
            self._fail(name, value, f"a {p.suffix or 'suffix-less'} file")
        if not p.is_file():
            self._fail(name, value, "not an existing file")
        return str(p.resolve())


def validate(values: dict, spec: dict[str, Rule]) -> dict:
    """Check every value against its rule; return the normalised values.

    Raises :class:`ParameterError` naming the first bad parameter, or a parameter that
    has a value but no rule (or a rule but no value).
    """
    missing = sorted(set(spec) - set(values))
    extra = sorted(set(values) - set(spec))
    if missing:
        raise ParameterError(f"parameter(s) {missing} have rules but no value")
    if extra:
        raise ParameterError(f"unknown parameter(s) {extra}; known: {sorted(spec)}")
    return {k: spec[k](k, values[k]) for k in values}
