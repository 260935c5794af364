# Two commands do all the set-up (see README.md):
#   make run    install gatepass and run the gateway on its embedded SQLite default (GATEPASS_HOME or ~/.gatepass)
#   make test   install gatepass with its test tools and run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run demo test check bench install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	GATEPASS=$(BIN)/gatepass sh scripts/run.sh

demo: install
	GATEPASS=$(BIN)/gatepass PYTHON=$(BIN)/python sh scripts/demo.sh

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python bench/gateway.py

check: install-test
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-home demo-gateway.log
