# Two entry points: `make demo` and `make test`. Both create .venv when it is absent.
# `make test-fast` (no slow, PostgreSQL, Spark or browser tests) and `make lint` (ruff and
# mypy) are for the edit-test loop; CI (.ci/run) runs `make lint` and `make test`.
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

.PHONY: install demo test test-fast lint bench serve clean chromium
install: $(VENV)/.base

demo: $(VENV)/.base
	$(VENV)/bin/segmently --db $(DB) demo --users $(USERS) --days $(DAYS)
	$(VENV)/bin/segmently --db $(DB) --json segments refresh --every 7d \
		--backfill-from $$(date -u -d '$(DAYS) days ago' +%F) > /dev/null
	@echo "Weekly snapshots of the last $(DAYS) days stored (sizes over time, entries, exits)."
	@echo "Open the UI: $(VENV)/bin/segmently --db $(DB) serve"
	@echo "then http://127.0.0.1:8000/ and sign in with the secret key printed above."
	@echo "In-app campaigns on a sample product page: examples/host/README.md."

# Two pytest workers, a test file each at a time (a file's servers start once), except that
# every Spark test goes to one worker (one JVM), and the longest go first (the scheduler in
# tests/conftest.py): 1010 tests in 12 min on 2 cores of which other work took more than
# half; 891 took 8 min on a quiet machine before that scheduler (bench/RESULTS.md "Test suite").
test: $(VENV)/.test chromium
	$(PY) -m pytest -q -n 2 --dist loadfile

# pytest's exit status is the recipe's: a failure, or no test collected (5), fails make.
FAST := not slow and not postgres and not spark and not browser
test-fast: $(VENV)/.test
	$(PY) -m pytest -q -n 2 --dist loadfile -m "$(FAST)"

lint: $(VENV)/.test
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy

# The UI tests drive Debian's chromium (never a downloaded browser); as root, install it.
chromium:
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
		(apt-get update -q && apt-get install -y -q chromium)

bench: $(VENV)/.test
	$(PY) bench/ingest.py

serve: $(VENV)/.base
	$(VENV)/bin/segmently --db $(DB) serve

clean:
	rm -rf $(VENV) .pytest_cache
