# The two commands of the README (`make run`, `make test`), plus `make dev`, `make lint`, `make bench` and `make soak`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PHOTOS ?=
CATALOG ?=
# The torch build to install before the rest; elsewhere a CPU build keeps the install small:
# make run TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0

.PHONY: run dev stop lint test bench soak clean

$(BIN)/lumina: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet --editable '.[dev,embeddings]'
	touch $@

run: $(BIN)/lumina
	$(BIN)/lumina run $(if $(PHOTOS),--photos "$(PHOTOS)") $(CATALOG)

dev: $(BIN)/lumina
	$(BIN)/lumina dev

stop: $(BIN)/lumina
	$(BIN)/lumina stop

# ruff and pyright, configured in pyproject.toml; `make test` runs them before the tests.
# pyright is named its config (a pyrightconfig.json in a parent folder would win otherwise)
# and asks no server whether a newer pyright exists (the version is pinned).
lint: $(BIN)/lumina
	$(BIN)/ruff check lumina_pipeline lumina_pipeline_tests benchmarks
	PYRIGHT_PYTHON_IGNORE_WARNINGS=1 $(BIN)/pyright --project pyproject.toml

test: lint
	$(BIN)/pytest

# The project's bytecode first, as an installed package has it: where PYTHONDONTWRITEBYTECODE is
# set, each process the benchmarks time would otherwise compile Lumina's modules again (0.04 s).
bench: $(BIN)/lumina
	$(BIN)/python -m compileall -q lumina_pipeline
	$(BIN)/python -m benchmarks

# The daemon on a changing copy of the corpus, with faults, for SOAK_SECONDS (default 600); not in `make test`.
soak: $(BIN)/lumina
	$(BIN)/python -m lumina_pipeline_tests.soak $(if $(SOAK_SECONDS),--seconds $(SOAK_SECONDS))

clean:
	if [ -x $(BIN)/lumina ]; then $(BIN)/lumina stop; fi
	rm -rf $(VENV) .lumina
