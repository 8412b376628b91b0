# Shortcuts for the README's commands. `make test` is what CI runs (.ci/run).
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV):
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q torch==2.13.0 -e '.[test]'

# a .venv made by `make run` or the README's first command lacks the test extra: install it first
test: $(VENV)
	$(PY) -c "import pytest, xdist, hypothesis, submitit, importlinter, filelock" 2>/dev/null \
		|| $(VENV)/bin/pip install -q -e '.[test]'
	$(PY) -m pytest -q

run: $(VENV)
	$(VENV)/bin/invlab run configs/seed_question.yaml

bench: $(VENV)
	$(PY) bench/sweep_throughput.py

.PHONY: test run bench
