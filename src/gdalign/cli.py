"""The ``gdalign`` command: run one notebook, build the book, list the claims.

::

    gdalign run NOTEBOOK [-p NAME VALUE ...] [--out DIR] [--timeout S]
    gdalign book [--jobs N] [--force] [--timeout S]
    gdalign claims [--json]

Exit status: 0 when everything ran and every claim is in order; 1 when a notebook
failed or a claim is out of order; 2 for a usage error (an unknown parameter name,
a missing notebook).
"""
from __future__ import annotations

import argparse
import ast
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from gdalign.book import (BUILD, EXECUTED, build_book, collect_claims, fmt_number, results_dirs_in_order,
                          verdict_word)
from gdalign.execute import DEFAULT_TIMEOUT_S, execute_notebook


class UsageError(Exception):
    """A mistake in the command line, reported in one line with exit status 2."""


def parse_value(text: str) -> Any:
    """A ``-p`` value: a Python literal (``3``, ``1e-3``, ``[2, 3]``, ``'exp'``), else YAML, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    # YAML reads "" as null; only an explicit null or ~ means None.
    return text if value is None and text.strip() not in ("null", "~") else value


def absolute_if_path(value: Any, cwd: Path | None = None) -> Any:
    """A string naming an existing file or folder (relative to ``cwd``) becomes its absolute path.

    The notebook runs with its output folder as working directory, so a user's
    ``-p data_file mydata.csv`` must reach it as an absolute path.
    """
    if isinstance(value, str) and value and not Path(value).is_absolute():
        candidate = (cwd or Path.cwd()) / Path(value).expanduser()
        if candidate.exists():
            return str(candidate.resolve())
    return value


def notebook_parameters(notebook: Path) -> dict:
    """The names and defaults of a notebook's ``parameters`` cell.

    papermill's inspection gives names, defaults and help; it skips lines it cannot
    parse (e.g. a comment holding an ``=``), so the names assigned at top level of
    the cell, read with :mod:`ast`, are added to what it found.
    """
    import papermill as pm

    papermill_log = logging.getLogger("papermill")
    level = papermill_log.level
    papermill_log.setLevel(logging.ERROR)  # its "Unable to parse line" warnings are covered below
    try:
        known = dict(pm.inspect_notebook(str(notebook)))
    finally:
        papermill_log.setLevel(level)
    for name in _assigned_names(notebook):
        known.setdefault(name, {"name": name})
    return known


def _assigned_names(notebook: Path) -> list[str]:
    """Names assigned at top level of the first cell tagged ``parameters``."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return []
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:  # IPython magics: papermill's answer stands
        return []
    names = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        for t in targets:
            names += [n.id for n in ast.walk(t) if isinstance(n, ast.Name)]
    return names


def check_names(notebook: Path, given: dict) -> None:
    """Unknown ``-p`` names are a usage error naming the known ones, before executing anything."""
    known = notebook_parameters(notebook)
    unknown = [n for n in given if n not in known]
    if unknown:
        names = ", ".join(sorted(known)) if known else "none (the notebook has no cell tagged 'parameters')"
        raise UsageError(f"unknown parameter(s) {', '.join(map(repr, unknown))} for {notebook}; known: {names}")


def project_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` with a ``_toc.yml`` or ``pyproject.toml``; else the cwd."""
    for p in [start, *start.parents]:
        if (p / "_toc.yml").is_file() or (p / "pyproject.toml").is_file():
            return p
    return Path.cwd()


def print_claims(rows: list[dict], out=sys.stdout) -> None:
    """A plain-text table of verdicts, one line per claim."""
    if not rows:
        print("no claims recorded", file=out)
        return
    header = ("notebook", "claim", "paper", "measured", "threshold", "verdict")
    table = [header] + [(r["notebook"], r["id"], r["paper_ref"], fmt_number(r["measured"]),
                         f"{r['op']} {fmt_number(r['threshold'])}", verdict_word(r)) for r in rows]
    widths = [min(max(len(str(row[i])) for row in table), 40) for i in range(len(header))]
    for row in table:
        print("  ".join(str(c)[:w].ljust(w) for c, w in zip(row, widths)).rstrip(), file=out)
    bad = sum(not r["in_order"] for r in rows)
    held = sum(r["passed"] and r["expected"] == "hold" for r in rows)
    print(f"{len(rows)} claims: {held} held, {len(rows) - held - bad} failed as expected, {bad} out of order",
          file=out)


# --------------------------------------------------------------------------------------
# Subcommands
# --------------------------------------------------------------------------------------
def cmd_run(args) -> int:
    notebook = Path(args.notebook)
    if notebook.suffix != ".ipynb":
        notebook = notebook.with_suffix(".ipynb")
    if not notebook.is_file():
        raise UsageError(f"no such notebook: {notebook}")
    params = {}
    for name, value in args.param or []:
        params[name] = absolute_if_path(parse_value(value))
    check_names(notebook, params)
    out = Path(args.out) if args.out else project_root(notebook.resolve().parent) / BUILD / EXECUTED / notebook.stem
    print(f"gdalign run: executing {notebook} into {out}", file=sys.stderr)
    outcome = execute_notebook(notebook, out, params, timeout=args.timeout)
    if not outcome.ok:
        print(f"gdalign run: {notebook.stem} {outcome.status}: {outcome.error}", file=sys.stderr)
        print(f"  the executed notebook up to the error: {outcome.failed_dir / (notebook.stem + '.ipynb')}",
              file=sys.stderr)
        return 1
    rows = collect_claims([out])
    print_claims(rows)
    print(f"executed in {outcome.seconds:.1f} s; results: {out / 'results.json'}", file=sys.stderr)
    return 0 if all(r["in_order"] for r in rows) else 1


def cmd_book(args) -> int:
    return build_book(Path(args.root), jobs=args.jobs, force=args.force, timeout=args.timeout,
                      echo=lambda s: print(s, flush=True))


def cmd_claims(args) -> int:
    rows = collect_claims(results_dirs_in_order(Path(args.root)))
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_claims(rows)
    return 0 if all(r["in_order"] for r in rows) else 1


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gdalign", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute one notebook with papermill and print its verdicts")
    run.add_argument("notebook", help="path of the notebook, e.g. notebooks/03_theorem1.ipynb")
    run.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="a parameter of the notebook's parameters cell; VALUE is a Python literal or YAML")
    run.add_argument("--out", help="output folder (default: _build/executed/<notebook stem>)")
    run.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds before the run is killed")
    run.set_defaults(func=cmd_run)

    book = sub.add_parser("book", help="execute changed notebooks and build the site into _build/html")
    book.add_argument("--jobs", "-j", type=int, default=None, help="notebooks at a time (default: one per core)")
    book.add_argument("--force", action="store_true", help="re-execute every notebook, cached or not")
    book.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per notebook")
    book.add_argument("--root", default=".", help="folder with _config.yml and _toc.yml (default: .)")
    book.set_defaults(func=cmd_book)

    claims = sub.add_parser("claims", help="the verdicts of the latest results")
    claims.add_argument("--json", action="store_true", help="a JSON list, one object per claim")
    claims.add_argument("--root", default=".", help="folder holding _build/executed (default: .)")
    claims.set_defaults(func=cmd_claims)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"gdalign {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gdalign {args.command}: interrupted; no partial result was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
