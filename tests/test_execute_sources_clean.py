"""Source notebooks are stored without outputs: the book shows executed copies only."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def stored_outputs(path: Path) -> list[str]:
    """Where a notebook keeps outputs or execution counts (empty when it is clean)."""
    nb = nbformat.read(path, as_version=4)
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {i}: {len(cell.outputs)} output(s)")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i}: execution_count {cell.execution_count}")
    return found


SOURCES = sorted((REPO / "notebooks").glob("*.ipynb")) + sorted(FIXTURES.glob("*.ipynb"))


@pytest.mark.parametrize("path", SOURCES, ids=[p.relative_to(REPO).as_posix() for p in SOURCES])
def test_source_notebook_has_no_outputs(path):
    assert not stored_outputs(path), f"{path.name} has stored outputs (clear them before committing)"


def test_the_check_sees_outputs(tmp_path):
    nb = nbformat.read(FIXTURES / "fixture.ipynb", as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    code.execution_count = 1
    nbformat.write(nb, tmp_path / "dirty.ipynb")
    assert stored_outputs(tmp_path / "dirty.ipynb") == ["cell 1: 1 output(s)", "cell 1: execution_count 1"]
