# Two entry points: `make demo` and `make test`. Both create .venv when it is absent.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
DB ?= segmently.duckdb
USERS ?= 2000
DAYS ?= 90

$(VENV)/.base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(PY) -m pip install -q -e '.[test]'
	touch $@

.PHONY: install demo test bench serve clean
install: $(VENV)/.base

demo: $(VENV)/.base
	$(VENV)/bin/segmently --db $(DB) demo --users $(USERS) --days $(DAYS)

test: $(VENV)/.test
	$(PY) -m pytest -q

bench: $(VENV)/.test
	$(PY) bench/ingest.py

serve: $(VENV)/.base
	$(VENV)/bin/segmently --db $(DB) serve

clean:
	rm -rf $(VENV) .pytest_cache
