# Two commands do all the set-up (see README.md):
#   make run    install gatepass and run the gateway on its embedded SQLite default (GATEPASS_HOME or ~/.gatepass)
#   make test   install gatepass with its test tools and run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# The compiled build (setup.py): the request path compiled with mypyc, in a venv of its own so that
# the editable pure-Python install above never picks up stale compiled modules.
CVENV  ?= .venv-compiled
CBIN    = $(CVENV)/bin

.PHONY: run demo test check bench install install-test clean compiled test-compiled bench-compiled run-compiled

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

# `make compiled`: gatepass with its request path compiled (needs a C compiler and Python's headers;
# a few minutes). `make run-compiled` runs the gateway on it as `make run` does, `make test-compiled`
# runs the whole suite on it and `make bench-compiled` measures it.
$(CBIN)/python:
	$(PYTHON) -m venv $(CVENV)
	$(CBIN)/python -m pip install --quiet --upgrade pip

$(CVENV)/.installed: pyproject.toml setup.py $(shell find src -name '*.py') | $(CBIN)/python
	$(CBIN)/python -m pip install --quiet 'mypy>=1.10' 'setuptools>=77' '.[test]'
	GATEPASS_COMPILE=1 $(CBIN)/python -m pip install --quiet --no-build-isolation --force-reinstall --no-deps .
	$(CBIN)/python -c "import gatepass.dataplane.gateway as g, sys; sys.exit(0 if g.__file__.endswith('.so') else 'gatepass was not compiled')"
	touch $@

compiled: $(CVENV)/.installed

test-compiled: compiled
	$(CBIN)/python -m pytest $(PYTEST_ARGS)

bench-compiled: compiled
	$(CBIN)/python bench/gateway.py

run-compiled: compiled
	GATEPASS=$(CBIN)/gatepass sh scripts/run.sh

check: install-test
	$(BIN)/ruff check src tests bench scripts setup.py
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(CVENV) build .pytest_cache .mypy_cache .ruff_cache demo-home demo-gateway.log
