# Two commands do all set-up on a fresh Debian 12 machine:
#   make demo   install everything and run the product in a namespace lab
#   make test   install everything and run every check and test
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit e2e system-deps venv clean-lab

demo: system-deps venv
	$(BIN)/skylan demo --console

test: system-deps venv lint typecheck
	$(BIN)/pytest -n 2

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: venv
	$(BIN)/mypy --strict src

unit: venv
	$(BIN)/pytest tests/unit

e2e: system-deps venv
	$(BIN)/pytest -m e2e

system-deps:
	./scripts/install-system-deps.sh

venv: $(STAMP)
	@$(BIN)/python -m skylan.controller.console.vendor  # the console's pinned npm assets

# the compiled data-plane core is rebuilt when its C changes; here it must build
$(STAMP): pyproject.toml setup.py $(wildcard csrc/*.c csrc/*.h)
	$(PYTHON) -m venv $(VENV)
	SKYLAN_REQUIRE_CORE=1 $(BIN)/pip install -q -e '.[dev]'
	touch $@

clean-lab: venv
	$(BIN)/skylan lab clean --all

