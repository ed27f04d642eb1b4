# The two commands of the README (`make run`, `make test`), plus `make dev`, `make lint`, `make bench` and `make soak`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PHOTOS ?=
CATALOG ?=
# The torch build to install before the rest; elsewhere a CPU build keeps the install small:
# make run TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
# Torch serves only the models' one-time ONNX export. Its bytecode is written for the modules
# that export imports, by importing them, instead of for all of torch: 29 s of the install.
WARM_TORCH := import torch.onnx, torch._dynamo
# The rest with uv, which installs the same packages as pip in a third of the time (torch,
# already there, is kept), compiled as pip compiles them: where PYTHONDONTWRITEBYTECODE is set,
# every process would compile each module it imports (torch uncompiled took 3.7 s more to
# import). pip where uv fails: uv does not read pip's configuration (an index mirror set there, say).
UV_INSTALL := $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python
PIP_INSTALL := $(BIN)/pip install --quiet
RUFF := $(BIN)/ruff check lumina_pipeline lumina_pipeline_tests benchmarks
# pyright is named its config (a pyrightconfig.json in a parent folder would win otherwise)
# and asks no server whether a newer pyright exists (the version is pinned).
PYRIGHT := PYRIGHT_PYTHON_IGNORE_WARNINGS=1 $(BIN)/pyright --project pyproject.toml

.PHONY: run dev stop lint test bench soak clean

# Which Python the virtualenv is made with, checked before anything is installed; a .venv of
# another Python (left by an earlier attempt) is made anew.
SUPPORTED := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))
VERSION := import sys; print(*sys.version_info[:2])

$(BIN)/lumina: pyproject.toml
	@$(PYTHON) -c '$(SUPPORTED)' || { echo "Lumina needs Python 3.11 to 3.13; $(PYTHON) is $$($(PYTHON) -V 2>&1). Try: make $(or $(MAKECMDGOALS),run) PYTHON=python3.12" >&2; exit 2; }
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c '$(VERSION)')" != "$$($(PYTHON) -c '$(VERSION)')" ]; then rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip uv
	$(PIP_INSTALL) --no-compile $(TORCH)
	$(UV_INSTALL) --editable '.[embeddings]' || $(PIP_INSTALL) --editable '.[embeddings]'
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -c '$(WARM_TORCH)'
	touch $@

# What the tests, linters and benchmarks add (pytest, pyright, the reference libraries, Celery).
$(VENV)/dev-installed: $(BIN)/lumina
	$(UV_INSTALL) --editable '.[dev,embeddings]' || $(PIP_INSTALL) --editable '.[dev,embeddings]'
	touch $@

run: $(BIN)/lumina
	$(BIN)/lumina run $(if $(PHOTOS),--photos "$(PHOTOS)") $(if $(CATALOG),"$(CATALOG)")

dev: $(BIN)/lumina
	$(BIN)/lumina dev $(if $(PORT),--port $(PORT))

stop: $(BIN)/lumina
	$(BIN)/lumina stop

# ruff and pyright, configured in pyproject.toml; both must be clean.
lint: $(VENV)/dev-installed
	$(RUFF)
	$(PYRIGHT)

# `make lint` and the tests. pyright (about 20 s) runs beside the tests, which leave CPU idle
# while they wait for daemons; its output follows theirs, and either failing fails the target.
test: $(VENV)/dev-installed
	$(RUFF)
	@$(PYRIGHT) > $(VENV)/pyright.log 2>&1 & pyright=$$!; \
	$(BIN)/pytest; tests=$$?; \
	wait $$pyright; types=$$?; echo "pyright: $$(tail -n 1 $(VENV)/pyright.log)"; \
	[ $$types -eq 0 ] || cat $(VENV)/pyright.log; \
	exit $$(( tests ? tests : types ))

# The project's bytecode first, as an installed package has it: where PYTHONDONTWRITEBYTECODE is
# set, each process the benchmarks time would otherwise compile Lumina's modules again (0.04 s).
bench: $(VENV)/dev-installed
	$(BIN)/python -m compileall -q lumina_pipeline
	$(BIN)/python -m benchmarks

# The daemon on a changing copy of the corpus, with faults, for SOAK_SECONDS (default 600); not in `make test`.
soak: $(VENV)/dev-installed
	$(BIN)/python -m lumina_pipeline_tests.soak $(if $(SOAK_SECONDS),--seconds $(SOAK_SECONDS))

# Never with photos in quarantine: they would be deleted with .lumina.
clean:
	@if [ -n "$$(find .lumina/quarantine -type f ! -name .lumina-own-folder -print -quit 2>/dev/null)" ]; then echo "make clean: .lumina/quarantine holds quarantined photos; put them back (lumina undo CATALOG) or delete them for good (lumina quarantine purge CATALOG --older-than 0) first" >&2; exit 2; fi
	if [ -x $(BIN)/lumina ]; then $(BIN)/lumina stop; fi
	rm -rf $(VENV) .lumina
