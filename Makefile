# convintel: `make serve` and `make test` work on a fresh machine with Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DATA_ROOT ?= ../shared/data

.PHONY: install install-test install-check lint serve test test-postgres test-slow test-fuzz models bench bench-load bench-backends bench-topics soak docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

# Re-install whenever pyproject.toml changes; the marker records what was installed.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# The test extra pulls every extra the suite exercises (train, onnx, ray): see pyproject.toml.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

serve: install
	$(BIN)/convintel serve

# ruff (format and lint, line length 120) over the whole tree; mypy over nlp/ (pyproject.toml).
lint: install-test
	$(BIN)/pip install --quiet -e '.[lint]'
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

test: install-test
	$(BIN)/python -m pytest -m "not slow" -q

# The store, API and system tests again with every store on PostgreSQL: a throwaway server
# (Debian's postgresql-15 binaries, docs/operations.md) started by the test session.
# The model and training tests touch no store, so they are not repeated.
test-postgres: install-test
	CONVINTEL_TEST_DATABASE=postgresql $(BIN)/python -m pytest -m "not slow" -q tests/api tests/system

# Slow tests; they need the optional UMAP reduction too.
test-slow: install-test
	$(BIN)/pip install --quiet -e '.[test,topics-umap]'
	$(BIN)/python -m pytest -m slow -q

# The wheel, installed into a fresh environment and run from an empty directory (slow).
install-check: install-test
	$(BIN)/python -m pytest -m slow -q -s tests/system/test_install.py

# Schemathesis against the OpenAPI spec with many more examples than the default suite.
test-fuzz: install-test
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-100} $(BIN)/python -m pytest -q tests/system/test_fuzz_api.py

# The shipped bundle, fine-tuned end to end from ../shared/data (training/finetune.yaml),
# then the cue head (and urgency, which the cue set's labels join) trained on its frozen
# encoder (docs/models.md). Interrupted? Run it again: it resumes from its last checkpoint.
models: install
	$(BIN)/pip install --quiet -e '.[train]'
	@start=$$(date +%s); \
	CONVINTEL_DATA_ROOT=$(DATA_ROOT) $(BIN)/convintel train --config training/finetune.yaml --resume && \
	CONVINTEL_DATA_ROOT=$(DATA_ROOT) $(BIN)/convintel train --config training/cues.yaml && \
	echo "make models: $$(( $$(date +%s) - start )) s of wall time"

bench: install
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/latency.py

# Ten minutes of mixed valid and invalid traffic against a real server (SOAK_ARGS="--duration 180").
soak: install-test
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

bench-load: install-test
	$(BIN)/python bench/load.py --json bench/results/load.json

bench-backends: install
	$(BIN)/pip install --quiet -e '.[bench]'
	CONVINTEL_DATA_ROOT=$(DATA_ROOT) $(BIN)/python bench/backends_accuracy.py --json bench/results/backends_accuracy.json

bench-topics: install
	$(BIN)/pip install --quiet -e '.[bench]'
	CONVINTEL_DATA_ROOT=$(DATA_ROOT) $(BIN)/python bench/topics.py --json bench/results/topics.json

# The settings table in docs/configuration.md, generated from service/settings.py
# (tests/system/test_settings_docs.py fails when it is out of date).
docs: install
	$(BIN)/python -m service.settings_docs --write

clean:
	rm -rf $(VENV) .cache .pytest_cache var build dist *.egg-info
