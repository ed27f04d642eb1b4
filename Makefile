# The two commands of the README (`make run`, `make test`), plus `make dev` and `make bench`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PHOTOS ?=
CATALOG ?=

.PHONY: run dev test bench clean

$(BIN)/lumina: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev]'
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
