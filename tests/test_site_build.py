"""``gdalign book`` end to end on small books made from the fixture notebook."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from gdalign.book import BookError, build_book, toc_files, toc_notebooks

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "fixture.ipynb"


def make_minibook(root: Path) -> Path:
    """A one-notebook book using the repository's real ``_config.yml``."""
    (root / "book").mkdir(parents=True)
    (root / "notebooks").mkdir()
    shutil.copy(REPO / "_config.yml", root / "_config.yml")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(REPO / "book" / "references.bib", root / "book" / "references.bib")
    shutil.copy(FIXTURE, root / "notebooks" / "fixture.ipynb")
    (root / "_toc.yml").write_text(textwrap.dedent("""\
        format: jb-book
        root: book/intro
        chapters:
          - file: notebooks/fixture
          - file: book/claims
          - file: book/build
        """))
    (root / "book" / "intro.md").write_text(textwrap.dedent("""\
        # A small book

        Inline math $\\|W_k\\|_F \\to \\infty$ and a citation {cite:p}`ji2019gradient`.

        ```{bibliography}
        ```
        """))
    return root


def make_placeholder_book(root: Path) -> Path:
    """The repository's real toc, config and pages, each toc notebook a copy of the fixture."""
    for name in ("_config.yml", "_toc.yml", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "book", root / "book")
    for f in toc_files(root / "_toc.yml"):
        if f.startswith("notebooks/"):
            (root / "notebooks").mkdir(exist_ok=True)
            shutil.copy(FIXTURE, root / f"{f}.ipynb")
    return root


def test_toc_lists_the_contracted_chapters():
    files = toc_files(REPO / "_toc.yml")
    assert files[0] == "book/intro"
    expected = ["01_setting", "02_invariants", "03_theorem1", "04_theorem2", "05_theorem3", "06_theorem4",
                "07_figure1", "08_assumptions", "09_real_data", "10_alexnet"]
    assert [f.split("/")[1] for f in files if f.startswith("notebooks/")] == expected
    for page in ("book/notation", "book/assumptions", "book/claims", "book/build", "book/references"):
        assert page in files


def test_missing_toc_notebook_is_an_error(tmp_path):
    root = make_minibook(tmp_path)
    (root / "notebooks" / "fixture.ipynb").unlink()
    with pytest.raises(BookError, match="notebooks/fixture"):
        toc_notebooks(root)
    assert build_book(root, echo=lambda s: None) == 1


@pytest.mark.slow
def test_book_builds_then_rebuilds_from_cache(tmp_path):
    root = make_minibook(tmp_path)
    log: list[str] = []
    assert build_book(root, jobs=1, echo=log.append) == 0, "\n".join(log)
    html = root / "_build" / "html"
    assert (html / "notebooks" / "fixture.html").is_file()
    claims = (html / "book" / "claims.html").read_text()
    assert "mean_small" in claims and "held" in claims
    built = (html / "book" / "build.html").read_text()
    assert "executed now" in built

    log.clear()
    assert build_book(root, jobs=1, echo=log.append) == 0, "\n".join(log)
    assert any("fixture" in line and "cached" in line for line in log), log
    assert "cached (inputs unchanged)" in (html / "book" / "build.html").read_text()


@pytest.mark.slow
def test_forced_failing_claim_fails_the_book(tmp_path):
    root = make_minibook(tmp_path)
    log: list[str] = []
    rc = build_book(root, jobs=1, parameters={"fixture": {"threshold": -1.0}}, echo=log.append)
    assert rc == 1
    assert any("out of order: fixture/mean_small" in line for line in log), log
    # The site is still built, so the failed verdict can be read there.
    assert "FAILED" in (root / "_build" / "html" / "book" / "claims.html").read_text()


@pytest.mark.slow
def test_erroring_notebook_fails_the_book_without_building_the_site(tmp_path):
    root = make_minibook(tmp_path)
    log: list[str] = []
    assert build_book(root, parameters={"fixture": {"crash": True}}, echo=log.append) == 1
    assert any("RuntimeError: crash requested" in line for line in log), log
    assert not (root / "_build" / "html").exists()


@pytest.mark.slow
def test_sphinx_warning_fails_the_book_every_time(tmp_path):
    """Warnings are errors, and a failed build does not leave a cache that hides them next time."""
    root = make_minibook(tmp_path)
    intro = root / "book" / "intro.md"
    intro.write_text(intro.read_text() + "\nA broken reference {doc}`no_such_page`.\n")
    log: list[str] = []
    assert build_book(root, echo=log.append) == 1
    assert any("no_such_page" in line for line in log), log
    assert build_book(root, echo=log.append) == 1
