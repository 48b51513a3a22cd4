"""The ``gdalign`` command line: run, claims, and their errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import nbformat

from gdalign.cli import UsageError, absolute_if_path, check_names, notebook_parameters, parse_value

FIXTURE = Path(__file__).parent / "fixtures" / "fixture.ipynb"


def gdalign(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gdalign.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("text, value", [
    ("3", 3), ("1e-3", 1e-3), ("[2, 3]", [2, 3]), ("'exp'", "exp"), ("exp", "exp"), ("True", True),
    ("true", True), ("{a: 1}", {"a": 1}), ("data/x.csv", "data/x.csv"), ("", ""),
])
def test_parse_value_takes_python_literals_then_yaml(text, value):
    assert parse_value(text) == value


def test_relative_file_values_become_absolute(tmp_path):
    (tmp_path / "mine.csv").write_text("x,y\n")
    assert absolute_if_path("mine.csv", tmp_path) == str((tmp_path / "mine.csv").resolve())
    assert absolute_if_path("exp", tmp_path) == "exp"  # not a file: left alone
    assert absolute_if_path(3, tmp_path) == 3


def test_unknown_parameter_name_is_refused_before_executing(tmp_path):
    r = gdalign("run", str(FIXTURE), "-p", "n_pionts", "5", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 2
    assert "unknown parameter(s) 'n_pionts'" in r.stderr
    assert "known: crash, n_points, sleep_s, threshold" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".*"))


def test_parameter_names_found_where_papermill_cannot_parse_the_line(tmp_path):
    nb = nbformat.read(FIXTURE, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\ntarget = 1000.0   # runs to ln(1/R) = target\nwidths: list = [3, 1]\n"
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    known = notebook_parameters(path)
    assert {"n_points", "threshold", "sleep_s", "crash", "target", "widths"} <= set(known)
    check_names(path, {"target": 10.0, "widths": [2]})
    with pytest.raises(UsageError, match="known: crash, n_points, sleep_s, target, threshold, widths"):
        check_names(path, {"targte": 10.0})


def test_missing_notebook_is_a_usage_error(tmp_path):
    r = gdalign("run", str(tmp_path / "nope.ipynb"), cwd=tmp_path)
    assert r.returncode == 2 and "no such notebook" in r.stderr


@pytest.mark.slow
def test_bad_value_is_one_clear_line_not_a_traceback(tmp_path):
    r = gdalign("run", str(FIXTURE), "-p", "n_points", "1", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 1
    assert "ParameterError: parameter 'n_points' = 1 is out of range: expected an integer in [2, 1000000]" \
        in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) <= 3, r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_run_prints_verdicts_and_claims_json_lists_them(tmp_path):
    r = gdalign("run", str(FIXTURE), "-p", "n_points", "60", "--out", str(tmp_path / "_build/executed/fixture"),
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "mean_small" in r.stdout and "held" in r.stdout
    assert (tmp_path / "_build/executed/fixture/results.json").is_file()

    r = gdalign("claims", "--json", "--root", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 1
    row = rows[0]
    for key in ("notebook", "id", "statement", "paper_ref", "measured", "threshold", "passed", "expected"):
        assert key in row, key
    assert row["notebook"] == "fixture" and row["id"] == "mean_small"
    assert row["passed"] is True and row["expected"] == "hold"
    assert isinstance(row["measured"], float) and row["threshold"] == 0.5
    assert row["parameters"]["n_points"] == 60

    r = gdalign("claims", "--root", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 0 and "1 claims: 1 held" in r.stdout


@pytest.mark.slow
def test_out_of_order_claim_fails_run_and_claims(tmp_path):
    out = tmp_path / "_build/executed/fixture"
    r = gdalign("run", str(FIXTURE), "-p", "threshold", "1e-12", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 1 and "FAILED" in r.stdout
    r = gdalign("claims", "--json", "--root", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 1
    assert json.loads(r.stdout)[0]["passed"] is False
