# The two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1

.PHONY: install run test test-deep lint format docs worker beat clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the pinned dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,docs]"
	touch $@

# axe-core for the accessibility browser tests (package.json), when npm is there: `make run`
# needs only Python, and the tests say how to get it when it is missing.
node_modules/.package-lock.json: package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the accessibility tests need it (apt-get install npm)"; fi

install: $(VENV)/.installed node_modules/.package-lock.json

## Set up everything and start the one-process embedded server on PORT (default 8000).
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py ensure_admin
	exec $(BIN)/python manage.py serve --host $(HOST)

## Lint, then run the whole test suite (on DATABASE_URL, SQLite when unset).
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

## The model-based test of run states, long: 500 new random sequences (STATE_MACHINE_EXAMPLES=N).
STATE_MACHINE_EXAMPLES ?= 500
test-deep: install
	STATE_MACHINE_EXAMPLES=$(STATE_MACHINE_EXAMPLES) $(BIN)/pytest -p no:cacheprovider \
		tests/engine/test_run_state_machine.py $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## The documentation site: docs/ built into site/ offline (open site/index.html).
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

## Production processes (set CELERY_BROKER_URL, DATABASE_URL, REDIS_URL, SECRET_KEY first).
worker: install
	exec $(BIN)/celery -A automation worker --loglevel=INFO

beat: install
	exec $(BIN)/celery -A automation beat --loglevel=INFO

clean:
	rm -rf $(VENV) node_modules staticfiles site .pytest_cache .ruff_cache
