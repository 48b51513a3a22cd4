"""The notebook runner: papermill execution, results, cache, atomicity, timeouts."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from gdalign.execute import (RESULTS, STAMP, Job, ResultsInvalid, execute_many, execute_notebook, input_hash,
                             read_result, validate_results)

FIXTURE = Path(__file__).parent / "fixtures" / "fixture.ipynb"
REPO = Path(__file__).resolve().parents[1]


def _leftovers(parent: Path) -> list[Path]:
    """Temporary folders of runs (``.<name>.tmp-*``) still lying in ``parent``."""
    return sorted(parent.glob(".*.tmp-*"))


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line or working directory contains ``text`` (Linux /proc).

    Workers name their job file on the command line; kernels run with cwd in the run folder.
    """
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if not cmd:  # a zombie
                    continue
                if text in cmd or text in os.readlink(p / "cwd"):
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


@pytest.fixture
def src_tree(tmp_path):
    """A copy of a source tree and pyproject the cache tests may edit."""
    src = tmp_path / "src" / "pkg"
    src.mkdir(parents=True)
    (src / "mod.py").write_text("X = 1\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndescription = "one"\ndependencies = ["numpy==2.4.6"]\n')
    return tmp_path / "src", tmp_path / "pyproject.toml"


# ---------------------------------------------------------------------------------------
# Hash: what invalidates the cache (fast, no kernel)
# ---------------------------------------------------------------------------------------
def test_input_hash_tracks_src_notebook_parameters_and_pins(tmp_path, src_tree):
    src, pyproject = src_tree
    nb = tmp_path / "nb.ipynb"
    shutil.copy(FIXTURE, nb)
    h0 = input_hash(nb, {"a": 1}, src, pyproject)
    assert input_hash(nb, {"a": 1}, src, pyproject) == h0

    (src / "pkg" / "__pycache__").mkdir()
    (src / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"junk")
    assert input_hash(nb, {"a": 1}, src, pyproject) == h0, "byte code is not an input"
    pyproject.write_text(pyproject.read_text().replace('"one"', '"two"'))
    assert input_hash(nb, {"a": 1}, src, pyproject) == h0, "prose in pyproject is not an input"

    assert input_hash(nb, {"a": 2}, src, pyproject) != h0
    pyproject.write_text(pyproject.read_text().replace("2.4.6", "2.4.7"))
    h1 = input_hash(nb, {"a": 1}, src, pyproject)
    assert h1 != h0
    (src / "pkg" / "new.py").write_text("")
    h2 = input_hash(nb, {"a": 1}, src, pyproject)
    assert h2 != h1
    nb.write_bytes(nb.read_bytes().replace(b"400", b"401"))
    assert input_hash(nb, {"a": 1}, src, pyproject) != h2


def test_validate_results_rejects_malformed():
    good = {"notebook": "x", "claims": [{"id": "a", "statement": "s", "paper_ref": "T1", "measured": 1.0,
                                         "threshold": 2.0, "passed": True, "expected": "hold"}],
            "parameters": {}, "provenance": {}}
    assert validate_results(good) is good
    for broken in ({**good, "claims": "x"},
                   {**good, "claims": [{**good["claims"][0], "passed": "yes"}]},
                   {**good, "claims": [{**good["claims"][0], "expected": "maybe"}]},
                   {k: v for k, v in good.items() if k != "provenance"}):
        with pytest.raises(ResultsInvalid):
            validate_results(broken)


# ---------------------------------------------------------------------------------------
# Real runs of the fixture notebook
# ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_fixture_runs_in_its_output_folder_and_writes_valid_results(tmp_path):
    out = tmp_path / "executed" / "fixture"
    o = execute_notebook(FIXTURE, out, {"n_points": 50})
    assert o.status == "executed", o.error
    assert sorted(p.name for p in out.iterdir()) == ["fixture.ipynb", RESULTS, STAMP]
    doc = validate_results(json.loads((out / RESULTS).read_text()))
    assert [c["id"] for c in doc["claims"]] == ["mean_small"]
    assert doc["claims"][0]["passed"] is True
    assert doc["parameters"]["n_points"] == 50
    # The kernel ran with the runner's environment, in the folder that became `out`.
    nums = doc["numbers"]
    assert nums["progress_env"] == "0"
    assert nums["mpl_backend"] == "module://matplotlib_inline.backend_inline"
    assert Path(nums["cwd"]).parent == out.parent and Path(nums["cwd"]).name.startswith(".fixture.tmp-")
    stamp = read_result(out)
    assert stamp["hash"] == Job(FIXTURE, out, {"n_points": 50}).hash()
    executed = nbformat.read(out / "fixture.ipynb", as_version=4)
    figures = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if "image/png" in o.get("data", {})]
    assert len(figures) == 1, "the histogram is not embedded in the executed notebook"
    assert not _leftovers(out.parent)


@pytest.mark.slow
def test_cache_reexecutes_only_when_inputs_change(tmp_path, src_tree):
    src, pyproject = src_tree
    nb = tmp_path / "fixture.ipynb"
    shutil.copy(FIXTURE, nb)
    out = tmp_path / "executed" / "fixture"

    def status(params=None, force=False):
        job = Job(nb, out, params or {"n_points": 20}, 120, src_dir=src, pyproject=pyproject)
        return execute_many([job], n_jobs=1, force=force)[0].status

    assert status() == "executed"
    assert status() == "cached"
    (src / "pkg" / "mod.py").write_text("X = 2\n")  # src/ changed
    assert status() == "executed"
    assert status() == "cached"
    nb.write_bytes(nb.read_bytes().replace(b"n_points = 400", b"n_points = 300"))  # the notebook changed
    assert status() == "executed"
    assert status({"n_points": 21}) == "executed"  # its parameters changed
    assert status({"n_points": 21}) == "cached"
    assert status({"n_points": 21}, force=True) == "executed"


@pytest.mark.slow
def test_raising_notebook_leaves_no_result_and_keeps_its_partial_run_aside(tmp_path):
    out = tmp_path / "fixture"
    o = execute_notebook(FIXTURE, out, {"crash": True})
    assert o.status == "failed"
    assert "RuntimeError: crash requested" in o.error
    assert not out.exists() and read_result(out) is None
    assert (o.failed_dir / "fixture.ipynb").is_file() and not (o.failed_dir / STAMP).exists()
    assert not _leftovers(tmp_path)

    # A good result of other inputs is left alone, but is not taken as good for these.
    assert execute_notebook(FIXTURE, out, {"n_points": 30}).status == "executed"
    assert execute_notebook(FIXTURE, out, {"crash": True}).status == "failed"
    assert read_result(out)["parameters"] == {"n_points": 30}
    job = Job(FIXTURE, out, {"crash": True})
    assert execute_many([job], force=False)[0].status == "failed", "a failed run must not be cached"


@pytest.mark.slow
def test_notebook_that_writes_no_results_fails(tmp_path):
    nb = nbformat.read(FIXTURE, as_version=4)
    nb.cells = [c for c in nb.cells if "led.save" not in c.source]
    path = tmp_path / "nosave.ipynb"
    nbformat.write(nb, path)
    o = execute_notebook(path, tmp_path / "out", {"n_points": 10})
    assert o.status == "failed" and "results.json" in o.error
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_timeout_kills_the_run_and_leaves_no_result(tmp_path):
    out = tmp_path / "fixture"
    t0 = time.perf_counter()
    o = execute_many([Job(FIXTURE, out, {"sleep_s": 120.0}, timeout=10)])[0]
    assert o.status == "timeout" and "timed out" in o.error
    assert time.perf_counter() - t0 < 40
    assert not out.exists() and not _leftovers(tmp_path)
    time.sleep(2.5)  # the kernel polls for its parent once a second
    assert not _processes_mentioning(str(tmp_path)), "worker or kernel outlived the timeout"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_interrupted_run_leaves_no_result(tmp_path, sig):
    """Kill ``gdalign run`` mid-execution: no result; a later run sweeps and succeeds."""
    out = tmp_path / "fixture"
    proc = subprocess.Popen([sys.executable, "-m", "gdalign.cli", "run", str(FIXTURE), "-p", "sleep_s", "120",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=tmp_path)
    deadline = time.monotonic() + 60
    # Wait until the kernel is executing: papermill has saved the notebook once.
    while not any((t / "fixture.ipynb").is_file() for t in _leftovers(tmp_path)):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    if sig == signal.SIGTERM:  # cleaned up by the runner itself
        assert not _leftovers(tmp_path)
    deadline = time.monotonic() + 10
    while _processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not _processes_mentioning(str(tmp_path)), "worker or kernel outlived the killed run"
    assert not out.exists() and read_result(out) is None

    o = execute_many([Job(FIXTURE, out, {"n_points": 10})], force=False)[0]
    assert o.status == "executed", o.error
    assert not _leftovers(tmp_path), "the killed run's temporary folder was not swept"


@pytest.mark.slow
def test_notebooks_run_in_parallel(tmp_path):
    jobs = [Job(FIXTURE, tmp_path / f"nb{i}", {"sleep_s": 4.0, "n_points": 10 + i}) for i in range(2)]
    t0 = time.perf_counter()
    outcomes = execute_many(jobs, n_jobs=2)
    wall = time.perf_counter() - t0
    assert [o.status for o in outcomes] == ["executed", "executed"]
    assert wall < 0.8 * sum(o.seconds for o in outcomes), (wall, [o.seconds for o in outcomes])
