# The two commands a newcomer needs: `make demo` and `make test`.
# Each creates the virtual environment it needs, installs the project, then runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit integration clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/syncd demo

# The whole suite; CI prints the 15 slowest tests so creeping ones are seen.
test: $(STAMP) lint typecheck
	$(BIN)/pytest -q --durations=15

# Everything not marked `integration` (no processes, no served engines): seconds.
unit: $(STAMP)
	$(BIN)/pytest -q -m "not integration" --durations=5

integration: $(STAMP)
	$(BIN)/pytest -q -m integration --durations=15

lint: $(STAMP)
	$(BIN)/ruff check syncd tests bench
	$(BIN)/ruff format --check syncd tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
