# Two entry points that work on a fresh machine: `make demo` and `make test`.
# Each creates .venv (if missing) and installs what it needs into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

venv: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,demo]"

demo: venv
	$(BIN)/skhead2toe demo

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check skhead2toe tests benchmarks examples
	$(BIN)/ruff format --check skhead2toe tests benchmarks examples

docs: venv
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	$(BIN)/sphinx-build -W -b html docs docs/_build/html

bench: venv
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/bench_solvers.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
