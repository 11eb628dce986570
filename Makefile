# Two entry points on a fresh machine: `make sweep` (the main job) and `make test` (the suite).
# Both create .venv and install the project into it first.
VENV ?= .venv
PY := $(VENV)/bin/python
SPEC ?= sweeps/specs/paper_feature_noise.yaml
SWEEP ?= paper_feature_noise

.PHONY: install sweep test lint bench chromium postgresql report

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Re-runnable: once the sweep exists, `make sweep` continues it (`resume`: an interrupted sweep goes
# on from its trials' states, a finished one only prints its results again).
sweep: install
	@if [ -f sweep_results/$(SWEEP)/sweep.json ]; then \
		echo "sweep_results/$(SWEEP) exists: mixup-sweep resume $(SWEEP)"; \
		$(VENV)/bin/mixup-sweep resume $(SWEEP); \
	else \
		$(VENV)/bin/mixup-sweep run $(SPEC); \
	fi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Debian's chromium drives the browser tests of the report and the MLflow UI.
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# Debian's PostgreSQL serves the shared tracking server's tests (`mixup-sweep tracking up` would
# install it too; installing it here keeps apt out of the timed suite).
postgresql:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null)

test: lint chromium postgresql
	$(PY) -m pytest --durations=20

report: install chromium
	$(VENV)/bin/mixup-sweep report paper_feature_noise
	$(PY) -m dashboards.screenshot sweep_results/paper_feature_noise/report/report.html docs/report_main_job.png

bench: install
	$(PY) benchmarks/gd_step.py
