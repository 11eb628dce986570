# Two entry points on a fresh machine: `make sweep` (the main job) and `make test` (the suite).
# Both create .venv and install the project into it first.
VENV ?= .venv
PY := $(VENV)/bin/python
SPEC ?= sweeps/specs/paper_feature_noise.yaml

.PHONY: install sweep test lint bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

sweep: install
	$(VENV)/bin/mixup-sweep run $(SPEC)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest

bench: install
	$(PY) benchmarks/gd_step.py
