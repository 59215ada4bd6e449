# The two commands a newcomer needs: `make demo` and `make test`.
# Each creates the virtual environment it needs, installs the project, then runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The applications' side of the compatibility matrix: SDK 1.0.8 and LangChain's
# vector store, in an environment of their own (the project's own has 2.0.0).
COMPAT       := .venv-compat
COMPAT_STAMP := $(COMPAT)/.installed
COMPAT_PINS  := 'surrealdb==1.0.8' 'langchain-surrealdb==0.2.1' 'langchain-core~=1.1' numpy \
                'pytest>=8.2' 'pytest-timeout>=2.3'

.PHONY: demo test lint typecheck unit integration compat stress clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(COMPAT_STAMP): pyproject.toml
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/pip install --quiet --upgrade pip
	$(COMPAT)/bin/pip install --quiet -e . $(COMPAT_PINS)
	touch $(COMPAT_STAMP)

demo: $(STAMP)
	$(BIN)/syncd demo

# The whole suite; CI prints the 15 slowest tests so creeping ones are seen.
test: $(STAMP) lint typecheck compat
	$(BIN)/pytest -q --durations=15

# tests/compat on SDK 1.0.8 (+ LangChain); the whole suite runs it on 2.0.0.
# Served databases run from the project's environment (its SDK embeds 2.3.10).
compat: $(STAMP) $(COMPAT_STAMP)
	SYNCD_DEVSERVER_PYTHON=$(abspath $(BIN))/python $(COMPAT)/bin/pytest -q -p no:cacheprovider tests/compat

# Everything not marked `integration` (no processes, no served engines): seconds.
unit: $(STAMP)
	$(BIN)/pytest -q -m "not integration" --durations=5

integration: $(STAMP)
	$(BIN)/pytest -q -m integration --durations=15

# The integration tests under load, in a random order: a burner process spins on
# every CPU for the whole run (tests/support/burn.py), and pytest-randomly prints
# the seed (`-p randomly --randomly-seed=N` replays an order). No reruns: a test
# that passes only the second time has a bug. `make test` keeps file order, so CI
# fails for a reason, not for an order; this is where order and timing are hunted.
stress: $(STAMP)
	$(BIN)/pytest -m integration -p randomly --burn-cpus=-1 --durations=15 -rfE

lint: $(STAMP)
	$(BIN)/ruff check syncd tests bench
	$(BIN)/ruff format --check syncd tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(COMPAT) .pytest_cache .mypy_cache .ruff_cache
