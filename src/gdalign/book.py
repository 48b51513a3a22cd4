"""Building the site: execute the notebooks of ``_toc.yml``, generate the Claims and
"How this book was built" pages, and run Jupyter Book 1.x with execution off.

The book's sources are never built in place. :func:`build_book` stages them in
``_build/site-src/`` -- ``_config.yml``, ``_toc.yml``, ``book/``, the *executed*
notebooks from ``_build/executed/<stem>/`` and the two generated pages -- and
runs ``jupyter-book build`` there with warnings as errors, writing the HTML to
``_build/html``. Files are copied only when their bytes changed, so Sphinx's
incremental build re-reads only what changed.

The build fails (non-zero) when a notebook errors or times out (the site is then
not built: it would show stale results), or when any claim is out of order
(the site is built, so the failure can be read, and the exit is still non-zero).
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable

import yaml

from gdalign.execute import (DEFAULT_TIMEOUT_S, RESULTS, Job, Outcome, execute_many, in_order,
                             pinned_requirements, read_result, validate_results)

BUILD = "_build"
EXECUTED = "executed"
STAGING = "site-src"
HISTORY = "build-history.json"
#: Pages written by the build itself, by their toc entry.
GENERATED = ("book/claims", "book/build")


class BookError(RuntimeError):
    """A problem with the book's sources (toc, missing notebook) found before building."""


# --------------------------------------------------------------------------------------
# The table of contents
# --------------------------------------------------------------------------------------
def toc_files(toc_path: Path) -> list[str]:
    """Every ``file:`` entry of a Jupyter Book toc (root first), in reading order."""
    toc = yaml.safe_load(Path(toc_path).read_text())
    files: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(str(node["file"]))
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    files.append(str(toc["root"]))
    walk({k: v for k, v in toc.items() if k != "root"})
    return files


@dataclass
class Entry:
    """A notebook chapter of the toc: ``file`` is the toc entry (``notebooks/03_theorem1``)."""

    file: str
    root: Path

    @property
    def stem(self) -> str:
        return Path(self.file).name

    @property
    def source(self) -> Path:
        return self.root / f"{self.file}.ipynb"

    @property
    def out_dir(self) -> Path:
        return self.root / BUILD / EXECUTED / self.stem


def toc_notebooks(root: Path) -> list[Entry]:
    """The notebook chapters of ``root/_toc.yml``; a listed notebook that is missing is an error.

    An entry is a notebook when it lives under ``notebooks/`` or a ``.ipynb`` of
    that name exists; any other entry must be a page under ``book/`` (or generated).
    """
    root = Path(root)
    entries, missing = [], []
    for f in toc_files(root / "_toc.yml"):
        f = f.removesuffix(".ipynb").removesuffix(".md")
        if f in GENERATED:
            continue
        if f.startswith("notebooks/") or (root / f"{f}.ipynb").is_file():
            e = Entry(f, root)
            (entries if e.source.is_file() else missing).append(e)
        elif not (root / f"{f}.md").is_file():
            missing.append(Entry(f, root))
    if missing:
        raise BookError("_toc.yml lists files that do not exist: "
                        + ", ".join(str(e.source.relative_to(root)) if e.file.startswith("notebooks/")
                                    else f"{e.file}.md" for e in missing))
    return entries


# --------------------------------------------------------------------------------------
# Claims from the latest results
# --------------------------------------------------------------------------------------
def collect_claims(results_dirs: Iterable[Path]) -> list[dict]:
    """One flat record per claim from each ``results.json`` found in ``results_dirs``.

    Each record has ``notebook`` (the stem of the executed notebook), the
    claim's own fields, ``in_order`` recomputed from ``passed`` and ``expected``,
    and the run's ``commit`` and ``parameters``.
    """
    rows = []
    for d in results_dirs:
        path = Path(d) / RESULTS
        if not path.is_file():
            continue
        doc = validate_results(json.loads(path.read_text()))
        stamp = read_result(Path(d)) or {}
        # The notebook's stem: from the stamp (a custom --out folder may have any name).
        name = Path(stamp["notebook"]).stem if stamp.get("notebook") else Path(d).name
        for c in doc["claims"]:
            rows.append({
                "notebook": name, "id": c["id"], "statement": c["statement"],
                "paper_ref": c["paper_ref"], "measured": c.get("measured"), "op": c.get("op", ""),
                "threshold": c.get("threshold"), "passed": bool(c["passed"]), "expected": c["expected"],
                "in_order": in_order(c), "note": c.get("note", ""),
                "commit": doc["provenance"].get("commit"), "parameters": doc["parameters"],
            })
    return rows


def verdict_word(row: dict) -> str:
    """'held', 'failed as expected', or the two out-of-order words (as gdalign.claims)."""
    if row["expected"] == "hold":
        return "held" if row["passed"] else "FAILED"
    return "failed as expected" if not row["passed"] else "HELD (expected to fail)"


def fmt_number(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return f"{x:.4g}"
    return str(x)


def results_dirs_in_order(root: Path) -> list[Path]:
    """``_build/executed/*`` folders: toc notebooks first in toc order, then any others."""
    executed = Path(root) / BUILD / EXECUTED
    found = sorted(p for p in executed.glob("*") if p.is_dir() and not p.name.startswith(".")
                   and not p.name.endswith(".failed")) if executed.is_dir() else []
    order = []
    if (Path(root) / "_toc.yml").is_file():
        order = [Path(f).name for f in toc_files(Path(root) / "_toc.yml")]
    rank = {name: i for i, name in enumerate(order)}
    return sorted(found, key=lambda p: (rank.get(p.name, len(rank)), p.name))


# --------------------------------------------------------------------------------------
# Generated pages
# --------------------------------------------------------------------------------------
# a cell starting with ">" would be a block quote in MyST: escape the strict comparisons
_OPS = {"<=": "≤", "<": "\\<", ">=": "≥", ">": "\\>", "==": "="}


def _cell(text) -> str:
    """One list-table cell: a single line of MyST."""
    return " ".join(str(text).split()) or "—"


def claims_page(rows: list[dict], entries: list[Entry]) -> str:
    """The Claims page: one table of every verdict, grouped by notebook, with provenance."""
    held = sum(r["passed"] and r["expected"] == "hold" for r in rows)
    as_expected = sum((not r["passed"]) and r["expected"] == "fail" for r in rows)
    bad = [r for r in rows if not r["in_order"]]
    lines = [
        "# Claims", "",
        "Every verdict in the book, generated by `gdalign book` from the `results.json` each notebook "
        "writes. A claim *holds* when its measured value satisfies the threshold; a counterexample is "
        "a claim *expected to fail*, and it is in order when it does. The build fails when any claim is "
        "out of order.", "",
        f"**{len(rows)} claims: {held} held, {as_expected} failed as expected, {len(bad)} out of order.**", "",
    ]
    files = {e.stem: e.file for e in entries}
    by_nb: dict[str, list[dict]] = {}
    for r in rows:
        by_nb.setdefault(r["notebook"], []).append(r)
    for nb, rs in by_nb.items():
        link = f"{{doc}}`/{files[nb]}`" if nb in files else f"`{nb}`"
        params = ", ".join(f"`{k}={v!r}`" for k, v in rs[0]["parameters"].items()) or "the notebook's defaults"
        lines += [f"## {nb}", "", f"Notebook: {link}. Commit `{rs[0]['commit']}`; parameters: {params}.", "",
                  "```{list-table}", ":header-rows: 1", ":widths: 13 15 44 13 15", "",
                  "* - Verdict", "  - Result", "  - Claim", "  - Measured", "  - Threshold"]
        for r in rs:
            mark = "✓" if r["in_order"] else "✗"
            lines += [f"* - {mark} {verdict_word(r)}",
                      f"  - {_cell(r['paper_ref'])}",
                      f"  - {_cell(r['statement'])} (`{r['id']}`)",
                      f"  - {fmt_number(r['measured'])}",
                      f"  - {_OPS.get(r['op'], r['op'])} {fmt_number(r['threshold'])}"]
        lines += ["```", ""]
    if not rows:
        lines += ["No notebook has recorded a claim yet.", ""]
    return "\n".join(lines)


def _fmt_s(s: float | None) -> str:
    return "—" if s is None else f"{s:.1f} s"


def build_page(outcomes: list[Outcome], execute_s: float, jobs: int, history: list[dict], root: Path) -> str:
    """'How this book was built': per-notebook time and cache status, environment, commands."""
    cold = next((h for h in reversed(history) if h.get("ok") and h.get("cached") == 0 and h.get("executed")), None)
    warm = next((h for h in reversed(history) if h.get("ok") and h.get("executed") == 0), None)
    lines = [
        "# How this book was built", "",
        "`gdalign book` (what `make book` runs) executes each notebook of the table of contents with "
        "papermill in its own process, reusing the last successful run when the hash of its inputs is "
        "unchanged: the `src/` tree, the notebook, its parameters and the pinned requirements of "
        "`pyproject.toml`. Then it writes the Claims page and this one, and builds the site with "
        "Jupyter Book 1 (execution off, warnings as errors).", "",
        "## This build", "",
        f"Notebook phase: {_fmt_s(execute_s)} of wall time with up to {jobs} notebook(s) in parallel, "
        f"on a machine with {os.cpu_count()} core(s). "
        f"{sum(o.status == 'executed' for o in outcomes)} executed, "
        f"{sum(o.status == 'cached' for o in outcomes)} reused from the cache.", "",
        "```{list-table}", ":header-rows: 1", "",
        "* - Notebook", "  - Cache", "  - Execution time", "  - Input hash",
    ]
    for o in outcomes:
        status = "executed now" if o.status == "executed" else "cached (inputs unchanged)"
        lines += [f"* - `{o.stem}`", f"  - {status}", f"  - {_fmt_s(o.seconds)}", f"  - `{o.hash[:12]}`"]
    lines += ["```", "", "The execution time of a cached notebook is that of the run it reuses.", "",
              "## Whole-book build times", "",
              "Measured by `gdalign book` itself on this machine (notebooks, pages and site together; "
              "the latest of each kind, this build included), from its log `_build/build-history.json`:", ""]
    lines.append(f"- cold (every notebook executed): {_fmt_s(cold['total_s']) + ' on ' + cold['when'] if cold else 'none recorded yet'}")
    lines.append(f"- rebuild with no notebook to execute: {_fmt_s(warm['total_s']) + ' on ' + warm['when'] if warm else 'none recorded yet'}")
    pins = pinned_requirements(root / "pyproject.toml").get("dependencies", [])
    names = [p.split("==")[0].split(">")[0].split("<")[0].strip() for p in pins]
    lines += ["", "## Environment", "", f"- Python {platform.python_version()} on {platform.platform()}"]
    for name in names:
        try:
            lines.append(f"- {name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"- {name} (not installed)")
    lines += ["", "## Commands", "",
              "```bash",
              "make book                  # the whole site; runs `gdalign book`",
              "gdalign book --jobs 2      # the same, two notebooks at a time",
              "gdalign book --force       # re-execute every notebook, cache or not",
              "gdalign run notebooks/03_theorem1.ipynb -p NAME VALUE   # one notebook, own parameters",
              "gdalign claims             # the table of verdicts; --json for a JSON list",
              "make test                  # the tests, including the site in headless Chromium",
              "```", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Staging and the Sphinx build
# --------------------------------------------------------------------------------------
def _write_if_changed(path: Path, data: bytes) -> None:
    """Keep the old file (and its mtime) when the bytes are the same: Sphinx then skips it."""
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def stage(root: Path, entries: list[Entry], pages: dict[str, str]) -> Path:
    """Lay out the site's sources in ``_build/site-src``; return that folder."""
    staging = root / BUILD / STAGING
    wanted: dict[Path, bytes] = {}
    for name in ("_config.yml", "_toc.yml"):
        wanted[staging / name] = (root / name).read_bytes()
    for p in sorted((root / "book").rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith("."):
            wanted[staging / p.relative_to(root)] = p.read_bytes()
    for e in entries:
        wanted[staging / f"{e.file}.ipynb"] = (e.out_dir / f"{e.stem}.ipynb").read_bytes()
    for file, text in pages.items():
        wanted[staging / f"{file}.md"] = text.encode()
    for path, data in wanted.items():
        _write_if_changed(path, data)
    # Drop what is no longer a source (a page removed from book/, a renamed notebook).
    for p in sorted(staging.rglob("*"), reverse=True):
        if p.is_file() and p not in wanted:
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()
    return staging


def sphinx_build(root: Path, staging: Path, echo: Callable[[str], None], full: bool = False) -> bool:
    """``jupyter-book build`` of the staging folder into ``_build/html``; True on success.

    ``full`` rewrites every page: an incremental Sphinx build leaves the navigation of
    unchanged pages stale when a chapter's title changes, so any re-executed notebook asks
    for it.

    Warnings are errors. A failed build removes its doctree cache and HTML, so the
    next build re-reads every page and reports the same warnings again instead of
    passing on a cache that hid them.
    """
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(staging),
           "--path-output", str(root), "--builder", "html", "--warningiserror", "--keep-going", "--quiet"]
    cmd += ["--all"] if full else []
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    out = (proc.stdout + proc.stderr).strip()
    ok = proc.returncode == 0
    if not ok:
        echo(out[-8000:])
        shutil.rmtree(root / BUILD / ".doctrees", ignore_errors=True)
        shutil.rmtree(root / BUILD / "html", ignore_errors=True)
    return ok


def _history(root: Path) -> list[dict]:
    path = root / BUILD / HISTORY
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return []


def build_book(root: str | os.PathLike = ".", jobs: int | None = None, force: bool = False,
               parameters: dict[str, dict] | None = None, timeout: float = DEFAULT_TIMEOUT_S,
               echo: Callable[[str], None] = print) -> int:
    """Execute what changed, write the generated pages, build the site. Exit status.

    ``parameters`` maps a notebook's stem to papermill parameters (the book itself
    runs every notebook at its defaults; tests use this to force a failing claim).
    Returns 0 when every notebook ran and every claim is in order, else 1.
    """
    t0 = time.perf_counter()
    root = Path(root).resolve()
    jobs = max(1, jobs or os.cpu_count() or 1)
    try:
        entries = toc_notebooks(root)
    except BookError as exc:
        echo(f"gdalign book: {exc}")
        return 1
    parameters = parameters or {}
    unknown = sorted(set(parameters) - {e.stem for e in entries})
    if unknown:
        echo(f"gdalign book: parameters given for notebooks not in the toc: {unknown}")
        return 1

    def report(o: Outcome) -> None:
        echo(f"  {o.stem:<24} {o.status:<9} {o.seconds:7.1f} s" + (f"  {o.error}" if o.error else ""))

    echo(f"gdalign book: {len(entries)} notebook(s), up to {jobs} at a time")
    job_list = [Job(e.source, e.out_dir, dict(parameters.get(e.stem, {})), timeout,
                    pyproject=root / "pyproject.toml" if (root / "pyproject.toml").is_file() else None)
                for e in entries]
    outcomes = execute_many(job_list, n_jobs=jobs, force=force, on_outcome=report)
    execute_s = time.perf_counter() - t0
    failed = [o for o in outcomes if not o.ok]
    if failed:
        for o in failed:
            echo(f"gdalign book: {o.stem} {o.status}: {o.error}\n  its partial run: {o.failed_dir}")
        echo("gdalign book: not building the site, since it would show stale results")
        return 1

    rows = collect_claims(e.out_dir for e in entries)
    bad = [r for r in rows if not r["in_order"]]
    history = _history(root)

    def pages() -> dict[str, str]:
        return {"book/claims": claims_page(rows, entries),
                "book/build": build_page(outcomes, execute_s, jobs, history, root)}

    echo("gdalign book: building the site (Jupyter Book, warnings as errors)")
    site_ok = sphinx_build(root, stage(root, entries, pages()), echo,
                           full=any(o.status == "executed" for o in outcomes))
    total = time.perf_counter() - t0
    history.append({"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "ok": site_ok and not bad,
                    "executed": sum(o.status == "executed" for o in outcomes),
                    "cached": sum(o.status == "cached" for o in outcomes), "jobs": jobs,
                    "execute_s": round(execute_s, 2), "total_s": round(total, 2)})
    (root / BUILD / HISTORY).write_text(json.dumps(history[-50:], indent=1))
    if site_ok:
        # Now this build's own time is known: put it on its page (an incremental pass that
        # re-reads that one page, a few seconds, not counted in the time it reports).
        site_ok = sphinx_build(root, stage(root, entries, pages()), echo)

    for r in bad:
        echo(f"gdalign book: claim out of order: {r['notebook']}/{r['id']} ({r['paper_ref']}): "
             f"measured {fmt_number(r['measured'])} {r['op']} {fmt_number(r['threshold'])}, "
             f"{verdict_word(r)}")
    held = sum(r["passed"] and r["expected"] == "hold" for r in rows)
    echo(f"gdalign book: {len(rows)} claims, {held} held, {len(bad)} out of order; "
         f"site {'built at ' + str(root / BUILD / 'html') if site_ok else 'build FAILED'}; {total:.1f} s")
    return 0 if site_ok and not bad else 1
