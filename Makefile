# Everything installs from this repository's own files into .venv. The OCI store tests also need
# Debian's docker-registry, which .ci/run installs (apt-get install docker-registry).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench schema clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "modelcat needs Python >= 3.11 (found: $$($(PYTHON) --version 2>&1)); set PYTHON=..." >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)

## demo: validate the demo catalog and show which model versions serve which application
demo: setup
	$(BIN)/modelcat validate models.yaml
	@echo
	$(BIN)/modelcat show models.yaml

## test: the whole test suite
test: setup
	$(BIN)/python -m pytest

## bench: the benchmarks whose results go into BENCHMARKS.md
bench: setup
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/hash.py

## schema: regenerate schemas/catalog.schema.json from the pydantic models
schema: setup
	$(BIN)/modelcat schema --write

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
