# The two commands of the README (`make run`, `make test`), plus `make dev` and `make bench`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PHOTOS ?=
CATALOG ?=
# The torch build to install before the rest; elsewhere a CPU build keeps the install small:
# make run TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0

.PHONY: run dev test bench clean

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

test: $(BIN)/lumina
	$(BIN)/pytest

bench: $(BIN)/lumina
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .lumina
