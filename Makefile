# rt3d-mlir: `make demo` runs the main job, `make test` runs every test.
VENV := .venv
PY := $(VENV)/bin/python
export XDG_RUNTIME_DIR ?= /tmp/rt3d-xdg-runtime

.PHONY: setup demo test lit pytest lint clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(VENV)/bin/rt3d-demo

test: setup
	@$(VENV)/bin/ruff check rt3d_mlir test bench lit.cfg.py
	@$(VENV)/bin/lit -sv test/lit
	@$(PY) -m pytest -q test/python

lit: setup
	@$(VENV)/bin/lit -v test/lit

pytest: setup
	@$(PY) -m pytest -q test/python

lint: setup
	@$(VENV)/bin/ruff check rt3d_mlir test bench lit.cfg.py

clean:
	rm -rf build out .pytest_cache
