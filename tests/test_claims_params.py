"""The claims ledger, parameter validation and the seed bands: each check can fail."""
import json
import math
import os
import stat

import numpy as np
import pandas as pd
import pytest

from gdalign.claims import ClaimOutOfOrder, Ledger, verdict_word
from gdalign.params import Bool, Float, Int, ListOf, OneOf, OptionalFile, ParameterError, validate
from gdalign.plots import on_grid


def test_check_passes_fails_and_never_passes_nan():
    led = Ledger("t")
    assert led.check("a", "s", "ref", 0.5, 1.0, "<=").passed
    assert not led.check("b", "s", "ref", 1.5, 1.0, "<=").passed
    assert not led.check("c", "s", "ref", math.nan, 1.0, "<=").passed
    assert not led.check("d", "s", "ref", math.nan, 1.0, ">=").passed
    with pytest.raises(ValueError, match="already"):
        led.check("a", "s", "ref", 0.0, 1.0)
    with pytest.raises(ValueError, match="expected"):
        led.check("e", "s", "ref", 0.0, 1.0, expected="maybe")


def test_at_every_record_reports_the_worst_slack():
    led = Ledger("t")
    v = led.at_every_record("gap", "gap <= D", "Lemma 2", [1.0, 2.0, 2.5], [3.0, 3.0, 2.0], "<=", tol=0.0)
    assert not v.passed and v.measured == pytest.approx(0.5)
    v = led.at_every_record("gap2", "gap <= D", "Lemma 2", [1.0, 2.0], 3.0, "<=")
    assert v.passed and v.measured == pytest.approx(-1.0)
    v = led.at_every_record("a2", "a^2 >= rhs", "Lemma 2", [0.9, 0.95], [0.8, 0.96], ">=", tol=1e-3)
    assert not v.passed and v.measured == pytest.approx(0.01)
    assert not led.at_every_record("n", "nan", "x", [1.0, math.nan], 2.0).passed


def test_in_the_limit_needs_small_and_decreasing():
    x = np.arange(1, 21, dtype=float)
    led = Ledger("t")
    assert led.in_the_limit("ok", "-> 0", "T1", x, 1.0 / x ** 2, eps=0.01).passed
    assert not led.in_the_limit("big", "-> 0", "T1", x, 1.0 / x, eps=0.01).passed  # 0.05 at the end
    rising = np.concatenate([1.0 / x[:10] ** 2, 1e-3 * x[10:] / 20])  # small but increasing at the end
    assert not led.in_the_limit("up", "-> 0", "T1", x, rising, eps=0.01).passed


def test_expected_failures_are_in_order_and_out_of_order_raises(tmp_path):
    led = Ledger("t")
    v = led.check("cx", "counterexample", "App. A", 1.0, 0.0, "<=", expected="fail")
    assert v.in_order and verdict_word(v) == "failed as expected"
    led.raise_if_out_of_order()
    led.check("bad", "a theorem", "T1", 1.0, 0.0, "<=")
    with pytest.raises(ClaimOutOfOrder, match="bad"):
        led.raise_if_out_of_order()
    path = led.save(tmp_path / "results.json", parameters={"eta": 0.1, "widths": [2, 1]})
    doc = json.loads(path.read_text())
    assert [c["id"] for c in doc["claims"]] == ["cx", "bad"] and doc["all_in_order"] is False
    assert doc["parameters"]["widths"] == [2, 1] and doc["provenance"]["packages"]["torch"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert not list(tmp_path.glob("*.tmp"))  # written by rename: no temporary left behind


@pytest.mark.parametrize("rule,value,match", [
    (Int(1, 12), 0, r"'p' = 0 is out of range: expected an integer in \[1, 12\]"),
    (Int(1, 12), 2.5, "not an integer"),
    (Float(0, None, lo_open=True), 0.0, "out of range"),
    (Float(), math.inf, "not finite"),
    (OneOf(["exp", "logistic"]), "cubic", "expected one of 'exp', 'logistic'"),
    (ListOf(Int(1)), [], "a list of length 0"),
    (ListOf(Int(1)), [1, 0], r"'p\[1\]' = 0"),
    (Bool(), 1, "not a boolean"),
    (OptionalFile(), "missing.csv", "not an existing file"),
])
def test_bad_values_name_the_parameter_and_what_it_accepts(rule, value, match):
    with pytest.raises(ParameterError, match=match):
        validate({"p": value}, {"p": rule})


def test_validate_names_unknown_and_missing_parameters():
    with pytest.raises(ParameterError, match="unknown parameter"):
        validate({"p": 1, "q": 2}, {"p": Int()})
    with pytest.raises(ParameterError, match="no value"):
        validate({}, {"p": Int()})
    assert validate({"p": 3.0}, {"p": Int(1, 5)}) == {"p": 3}


def test_on_grid_interpolates_members_at_common_x():
    # two members recorded at the same records but different x: y = x for one, y = 2x for the other
    df = pd.DataFrame({"member": [0, 0, 0, 1, 1, 1], "x": [1.0, 10.0, 100.0, 2.0, 20.0, 200.0],
                       "y": [1.0, 10.0, 100.0, 4.0, 40.0, 400.0]})
    grid, Y = on_grid(df, "x", "y", n=5)
    assert grid[0] == pytest.approx(2.0) and grid[-1] == pytest.approx(100.0)
    assert np.allclose(Y[0], grid) and np.allclose(Y[1], 2 * grid)
