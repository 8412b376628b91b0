# Shortcuts for the README's commands. `make test` is what CI runs (.ci/run).
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV):
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q torch==2.13.0 -e '.[test]'

test: $(VENV)
	$(PY) -m pytest -q

run: $(VENV)
	$(VENV)/bin/invlab run configs/seed_question.yaml

bench: $(VENV)
	$(PY) bench/sweep_throughput.py

.PHONY: test run bench
