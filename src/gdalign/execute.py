"""Executing notebooks: papermill runs, a content-hash cache, atomic results.

Each notebook runs in its own worker process (``python -m gdalign.execute
--worker SPEC``), which calls papermill with the notebook's output folder as the
kernel's working directory, so the notebook's ``Ledger.save("results.json")``
lands next to its executed copy. The layout of one result is::

    <out_dir>/                 e.g. _build/executed/03_theorem1/
        03_theorem1.ipynb      the executed copy
        results.json           the notebook's verdicts (gdalign.claims.Ledger.save)
        stamp.json             input hash, parameters, wall time; written last

**Atomic.** The worker executes into a fresh temporary sibling folder; only when
papermill succeeded and ``results.json`` validates does the parent add
``stamp.json`` and rename the folder into place. A failed run is moved to
``<out_dir>.failed/`` for inspection, a killed one leaves only a ``.tmp`` folder
that is swept away later: neither is ever read as a result.

**Cached.** A result is reused when its ``stamp.json`` records the same input
hash: the ``src/`` tree, the notebook file, its parameters and the pinned
requirements of ``pyproject.toml`` (see :func:`input_hash`).

**Parallel.** :func:`execute_many` keeps up to ``jobs`` workers running, each
with its own wall-clock timeout; a worker past its timeout is killed with its
process group (the kernel exits with its parent).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

#: Bumped when the layout or the hash recipe changes, so old caches are not trusted.
RUNNER_VERSION = 1
STAMP = "stamp.json"
RESULTS = "results.json"
DEFAULT_TIMEOUT_S = 1200.0
#: What the kernels see: no progress bars, and a non-interactive matplotlib backend that
#: still embeds figures in the executed notebook. (Plain ``Agg`` would drop every figure:
#: ipykernel picks the inline backend only when MPLBACKEND is unset.)
KERNEL_ENV = {"GDALIGN_PROGRESS": "0", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
KERNEL_NAME = "python3"

_CLAIM_KEYS = {"id": str, "statement": str, "paper_ref": str, "passed": bool, "expected": str}


class ResultsInvalid(ValueError):
    """A results.json that does not have the shape gdalign.claims.Ledger.save writes."""


# --------------------------------------------------------------------------------------
# What a run depends on
# --------------------------------------------------------------------------------------
def default_src_dir() -> Path:
    """The ``src/`` folder that holds the imported gdalign package."""
    import gdalign

    return Path(gdalign.__file__).resolve().parent.parent


def _tree_digest(root: Path) -> str:
    """Hash of every file under ``root`` (relative paths and contents), caches skipped."""
    h = hashlib.sha256()
    if not root.is_dir():
        return "absent"
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        # Byte code, egg-info and editor droppings are not inputs of a run.
        if any(part == "__pycache__" or part.endswith(".egg-info") or part.startswith(".") for part in rel.parts):
            continue
        if p.is_file():
            h.update(rel.as_posix().encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def pinned_requirements(pyproject: Path) -> dict:
    """The requirement pins of ``pyproject.toml`` (not its prose), for the hash."""
    if not pyproject.is_file():
        return {}
    project = tomllib.loads(pyproject.read_text()).get("project", {})
    return {
        "requires-python": project.get("requires-python"),
        "dependencies": sorted(project.get("dependencies", [])),
        "optional-dependencies": {k: sorted(v) for k, v in project.get("optional-dependencies", {}).items()},
    }


def input_hash(notebook: Path, parameters: dict, src_dir: Path | None = None,
               pyproject: Path | None = None) -> str:
    """SHA-256 of everything a notebook run depends on.

    The ``src/`` tree, the notebook file, its parameters (as sorted JSON) and the
    pinned requirements. Changing any of them re-executes the notebook.
    """
    src_dir = Path(src_dir) if src_dir is not None else default_src_dir()
    pyproject = Path(pyproject) if pyproject is not None else src_dir.parent / "pyproject.toml"
    doc = {
        "runner": RUNNER_VERSION,
        "src": _tree_digest(src_dir),
        "notebook": hashlib.sha256(Path(notebook).read_bytes()).hexdigest(),
        "parameters": parameters,
        "pins": pinned_requirements(pyproject),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------
def validate_results(doc: Any) -> dict:
    """Check that ``doc`` is a results.json as Ledger.save writes it; return it.

    Raises :class:`ResultsInvalid` naming the first problem.
    """
    if not isinstance(doc, dict):
        raise ResultsInvalid("results.json is not a JSON object")
    for key, typ in (("notebook", str), ("claims", list), ("parameters", dict), ("provenance", dict)):
        if not isinstance(doc.get(key), typ):
            raise ResultsInvalid(f"results.json: {key!r} missing or not a {typ.__name__}")
    for i, c in enumerate(doc["claims"]):
        if not isinstance(c, dict):
            raise ResultsInvalid(f"results.json: claim {i} is not an object")
        for key, typ in _CLAIM_KEYS.items():
            if not isinstance(c.get(key), typ):
                raise ResultsInvalid(f"results.json: claim {i} ({c.get('id')!r}): {key!r} missing or not a {typ.__name__}")
        if c["expected"] not in ("hold", "fail"):
            raise ResultsInvalid(f"results.json: claim {c['id']!r}: expected must be 'hold' or 'fail'")
        for key in ("measured", "threshold"):
            if key not in c:
                raise ResultsInvalid(f"results.json: claim {c['id']!r}: {key!r} missing")
    return doc


def in_order(claim: dict) -> bool:
    """A claim is in order when it passed exactly when it was expected to hold."""
    return bool(claim["passed"]) == (claim["expected"] == "hold")


def read_result(out_dir: Path) -> dict | None:
    """The stamp of a complete result in ``out_dir``, or None when there is none."""
    stamp = Path(out_dir) / STAMP
    if not stamp.is_file() or not (Path(out_dir) / RESULTS).is_file():
        return None
    try:
        return json.loads(stamp.read_text())
    except (OSError, json.JSONDecodeError):
        return None


# --------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------
@dataclass
class Job:
    """One notebook to execute into ``out_dir`` with ``parameters``."""

    notebook: Path
    out_dir: Path
    parameters: dict = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT_S
    src_dir: Path | None = None
    pyproject: Path | None = None

    @property
    def stem(self) -> str:
        return Path(self.notebook).stem

    def hash(self) -> str:
        return input_hash(self.notebook, self.parameters, self.src_dir, self.pyproject)


@dataclass
class Outcome:
    """What happened to one job: ``executed``, ``cached``, ``failed`` or ``timeout``."""

    stem: str
    status: str
    seconds: float
    out_dir: Path
    hash: str
    error: str = ""
    failed_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("executed", "cached")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        d["failed_dir"] = None if self.failed_dir is None else str(self.failed_dir)
        return d


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_temps(parent: Path) -> list[Path]:
    """Remove ``.<name>.tmp-<pid>-*`` folders whose owning process is gone (killed runs)."""
    removed = []
    if not parent.is_dir():
        return removed
    for p in parent.glob(".*.tmp-*"):
        try:
            pid = int(p.name.rsplit(".tmp-", 1)[1].split("-", 1)[0])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _replace_dir(src: Path, dst: Path) -> None:
    """Move folder ``src`` to ``dst``, replacing whatever was there."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class _Running:
    """A worker subprocess executing one job into its temporary folder."""

    def __init__(self, job: Job, digest: str, env: dict[str, str]):
        self.job = job
        self.digest = digest
        out = Path(job.out_dir).resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out = out
        # The pid in the name lets a later build sweep folders of killed runs.
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
        self.tmp.chmod(0o755)  # mkdtemp makes it private; the result is for everyone to read
        spec = {"notebook": str(Path(job.notebook).resolve()), "output": str(self.tmp / f"{job.stem}.ipynb"),
                "cwd": str(self.tmp), "parameters": job.parameters, "timeout": job.timeout}
        (self.tmp / "job.json").write_text(json.dumps(spec))
        self.log = open(self.tmp / "worker.log", "wb")
        self.t0 = time.perf_counter()
        # Own session, so a timeout can kill the worker with everything it started.
        self.proc = subprocess.Popen([sys.executable, "-m", "gdalign.execute", "--worker", str(self.tmp / "job.json")],
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, env={**os.environ, **env})

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def finish(self, timed_out: bool = False) -> Outcome:
        """Validate and move into place, or set the run aside as failed."""
        self.log.close()
        seconds = round(self.elapsed(), 3)
        error = ""
        if timed_out:
            error = f"timed out after {self.job.timeout:g} s"
        elif self.proc.returncode != 0:
            error = _worker_error(self.tmp, self.proc.returncode)
        else:
            try:
                validate_results(json.loads((self.tmp / RESULTS).read_text()))
            except FileNotFoundError:
                error = f"the notebook wrote no {RESULTS} in its working folder"
            except (json.JSONDecodeError, ResultsInvalid) as exc:
                error = str(exc)
        if error:
            failed = self.out.with_name(self.out.name + ".failed")
            _replace_dir(self.tmp, failed)
            return Outcome(self.job.stem, "timeout" if timed_out else "failed", seconds, self.out, self.digest,
                           error, failed)
        for name in ("job.json", "worker.log", "error.json"):
            (self.tmp / name).unlink(missing_ok=True)
        stamp = {"hash": self.digest, "notebook": str(self.job.notebook), "parameters": self.job.parameters,
                 "seconds": seconds, "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "runner_version": RUNNER_VERSION}
        # The stamp goes in last: a folder with a stamp is a complete result.
        (self.tmp / STAMP).write_text(json.dumps(stamp, indent=1, default=str))
        _replace_dir(self.tmp, self.out)
        shutil.rmtree(self.out.with_name(self.out.name + ".failed"), ignore_errors=True)
        return Outcome(self.job.stem, "executed", seconds, self.out, self.digest)

    def abandon(self) -> None:
        """Interrupted: kill the worker and leave nothing behind."""
        self.kill()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _worker_error(tmp: Path, rc: int) -> str:
    """One line saying why a worker failed (the notebook's exception when there is one)."""
    err = tmp / "error.json"
    if err.is_file():
        e = json.loads(err.read_text())
        where = f"In [{e['cell']}]: " if e.get("cell") is not None else ""
        return f"{where}{e['ename']}: {e['evalue']}".strip()
    tail = (tmp / "worker.log").read_text(errors="replace").strip().splitlines()[-1:] if (tmp / "worker.log").is_file() else []
    return f"worker exited with status {rc}" + (f": {tail[0]}" if tail else "")


def thread_env(n_jobs: int) -> dict[str, str]:
    """Share the cores between parallel notebooks: BLAS/OpenMP/torch threads per kernel.

    Without this each of ``n_jobs`` kernels would start one thread per core and they
    would fight over the cores. Variables the caller set already are kept.
    """
    threads = str(max(1, (os.cpu_count() or 1) // max(1, n_jobs)))
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return {name: threads for name in names if name not in os.environ}


def execute_many(jobs: Sequence[Job], n_jobs: int | None = None, force: bool = False,
                 on_outcome: Callable[[Outcome], None] | None = None, poll_s: float = 0.1) -> list[Outcome]:
    """Execute the jobs whose input hash changed, up to ``n_jobs`` at a time.

    Returns one :class:`Outcome` per job, in the order given. ``force`` re-executes
    cached ones too. ``on_outcome`` is called as each job ends (for progress lines).
    On KeyboardInterrupt or SIGTERM the running workers are killed and their
    temporary folders removed before the exception propagates.
    """
    n_jobs = max(1, n_jobs or os.cpu_count() or 1)
    outcomes: dict[int, Outcome] = {}
    todo: list[tuple[int, Job, str]] = []
    for i, job in enumerate(jobs):
        digest = job.hash()
        stamp = read_result(Path(job.out_dir))
        if not force and stamp is not None and stamp.get("hash") == digest:
            outcomes[i] = Outcome(job.stem, "cached", float(stamp.get("seconds", 0.0)), Path(job.out_dir), digest)
            if on_outcome:
                on_outcome(outcomes[i])
        else:
            todo.append((i, job, digest))
    for parent in {Path(job.out_dir).resolve().parent for job in jobs}:
        sweep_stale_temps(parent)

    running: dict[int, _Running] = {}
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_DFL:  # turn SIGTERM into an exception we clean up after
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        queue = list(todo)
        while queue or running:
            while queue and len(running) < n_jobs:
                i, job, digest = queue.pop(0)
                running[i] = _Running(job, digest, thread_env(n_jobs))
            time.sleep(poll_s)
            for i, r in list(running.items()):
                timed_out = r.proc.poll() is None and r.elapsed() > r.job.timeout
                if timed_out:
                    r.kill()
                if r.proc.poll() is not None:
                    outcomes[i] = r.finish(timed_out)
                    del running[i]
                    if on_outcome:
                        on_outcome(outcomes[i])
    except BaseException:
        for r in running.values():
            r.abandon()
        raise
    finally:
        if previous is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return [outcomes[i] for i in range(len(jobs))]


def execute_notebook(notebook: str | os.PathLike, out_dir: str | os.PathLike, parameters: dict | None = None,
                     timeout: float = DEFAULT_TIMEOUT_S, force: bool = True) -> Outcome:
    """Execute one notebook (always, unless ``force=False`` and its result is current)."""
    job = Job(Path(notebook), Path(out_dir), dict(parameters or {}), timeout)
    return execute_many([job], n_jobs=1, force=force)[0]


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------------------
# The worker process
# --------------------------------------------------------------------------------------
def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this worker when the process that started it dies.

    The worker runs in its own session, so a killed ``gdalign`` would otherwise leave
    it (and its kernel) running on as orphans; the kernel exits with the worker.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def _worker(spec_path: str) -> int:
    """Run papermill for one job spec; on a notebook error write error.json. Exit status."""
    _die_with_parent()
    spec = json.loads(Path(spec_path).read_text())
    os.environ.update(KERNEL_ENV)  # inherited by the kernel papermill starts
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    try:
        pm.execute_notebook(spec["notebook"], spec["output"], parameters=spec["parameters"],
                            kernel_name=KERNEL_NAME, progress_bar=False, log_output=False,
                            cwd=spec["cwd"], execution_timeout=spec["timeout"])
    except PapermillExecutionError as exc:
        err = {"cell": exc.exec_count, "ename": exc.ename, "evalue": exc.evalue}
        (Path(spec["cwd"]) / "error.json").write_text(json.dumps(err))
        print(f"{exc.ename}: {exc.evalue}", file=sys.stderr)
        return 2
    except Exception as exc:  # the kernel died, a cell timed out, the notebook is unreadable
        msg = str(exc).strip().splitlines()
        err = {"cell": None, "ename": type(exc).__name__, "evalue": msg[-1] if msg else ""}
        (Path(spec["cwd"]) / "error.json").write_text(json.dumps(err))
        raise
    return 0


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", required=True, help="job spec written by the parent process")
    args = ap.parse_args(argv)
    return _worker(args.worker)


if __name__ == "__main__":
    sys.exit(main())
