# The README's two commands: `make book` (the site) and `make test` (the tests).
# Each runs `setup` first, which creates .venv on a fresh machine and is idempotent.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.setup-stamp

.PHONY: setup test bench book clean

setup: $(STAMP)

# Re-run only when the pins change. torch is pinned exactly (a looser pin pulls CUDA).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_engine.py

book: setup
	$(BIN)/gdalign book

clean:
	rm -rf _build
