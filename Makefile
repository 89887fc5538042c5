# convintel: `make serve` and `make test` work on a fresh machine with Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DATA_ROOT ?= ../shared/data

.PHONY: install install-test serve test test-slow models bench bench-topics clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

# Re-install whenever pyproject.toml changes; the marker records what was installed.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

serve: install
	$(BIN)/convintel serve

test: install-test
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: install-test
	$(BIN)/python -m pytest -m slow -q

models: install
	CONVINTEL_DATA_ROOT=$(DATA_ROOT) $(BIN)/convintel train --recipe default --output models/convintel-base

bench: install
	$(BIN)/python bench/latency.py

bench-topics: install
	$(BIN)/pip install --quiet -e '.[bench]'
	CONVINTEL_DATA_ROOT=$(DATA_ROOT) $(BIN)/python bench/topics.py --json bench/results/topics.json

clean:
	rm -rf $(VENV) .cache .pytest_cache var
