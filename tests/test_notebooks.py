"""Every notebook of the book runs under papermill with small parameters, and its verdicts are in order.

The book itself runs them at full fidelity (``gdalign book``); here each runs in seconds with the
overrides below, through the same runner, and its results.json is validated. One real claim is
also forced to fail, to show the verdicts are live.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gdalign.execute import RESULTS, Job, execute_many, in_order, validate_results

REPO = Path(__file__).resolve().parents[1]
NB = REPO / "notebooks"

SMALL = {
    "01_setting": {"n_samples": 500, "init_seeds": 4, "tasks": ["iris-setosa"]},
    "02_invariants": {"seeds": [0, 1], "target": 100.0, "n_records": 12, "gd_steps": 50, "gd_etas": [0.1, 4.0],
                      "losses": ["exp"], "identity_steps": 1},
    "03_theorem1": {"seeds": [0, 1], "architectures": [[5, 4, 3]], "losses": ["exp"], "target": 100.0,
                    "target_large": 2000.0, "n_records": 12},
    "04_theorem2": {"loss_names": ["exp"], "seeds": [0], "target": 60.0, "n_records": 20, "lemma4_samples": 1000,
                    "poly_target": 20.0, "angle_eps": 0.2},
    "05_theorem3": {"seeds": [0, 1], "a5_steps": 1200, "n_records": 20, "lemma5_pairs": 200, "lemma6_steps": 600,
                    "practical_steps": [0.1, 1.0], "practical_n_steps": 300, "bad_n_steps": 10},
    "06_theorem4": {"seeds": [0], "steps": 1000, "n_records": 20},
    "07_figure1": {"seeds": [0, 1], "steps": 2000, "eta": 4.0, "checkpoints": [0, 10, 100, 2000],
                   "records_per_segment": 8},
    "08_assumptions": {"seeds": [0, 1], "n_records": 20, "bad_t_max": 10.0, "bad_gd_steps": 1000,
                       "crit_t_max": 10.0, "crit_gd_steps": 20, "nonsep_t_max": 30.0, "squared_t_max": 10.0,
                       "hinge_step": 0.05, "poly_target": 20.0, "mc_per_class": 5, "mc_target": 8.0},
    "09_real_data": {"tasks": ["iris-setosa", "digits-0-1"], "seeds": [0, 1], "gf_target": 30.0, "gd_target": 5.0,
                     "gd_steps": 2000, "a5_steps": 20, "n_records": 12, "eps_data": 0.1},
    "10_alexnet": {"seeds": [0]},
}


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("notebooks")
    jobs = [Job(NB / f"{stem}.ipynb", out / stem, params, timeout=600) for stem, params in SMALL.items()]
    outcomes = execute_many(jobs, n_jobs=2, force=True)
    return {o.stem: o for o in outcomes}


def test_every_book_notebook_has_a_small_variant():
    assert sorted(p.stem for p in NB.glob("*.ipynb")) == sorted(SMALL)


@pytest.mark.slow
@pytest.mark.parametrize("stem", sorted(SMALL))
def test_notebook_runs_and_its_verdicts_are_in_order(small_runs, stem):
    o = small_runs[stem]
    assert o.ok, f"{stem}: {o.status}: {o.error}"
    doc = validate_results(json.loads((o.out_dir / RESULTS).read_text()))
    assert doc["claims"], f"{stem} checked no claim"
    bad = [c["id"] for c in doc["claims"] if not in_order(c)]
    assert not bad, f"{stem}: out of order: {bad}"
    assert doc["parameters"], "results.json records the parameters"
    assert doc["provenance"]["commit"], "and the commit"


@pytest.mark.slow
def test_a_real_claim_forced_to_fail_is_reported(tmp_path):
    """Notebook 02 with a zero tolerance on the gradient-flow invariant: that claim must fail."""
    params = dict(SMALL["02_invariants"], invariant_tol=0.0)
    (o,) = execute_many([Job(NB / "02_invariants.ipynb", tmp_path / "02", params, timeout=600)], n_jobs=1,
                        force=True)
    assert not o.ok and "ClaimOutOfOrder" in o.error, o.error
