# The two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1

.PHONY: install run test test-deep lint format worker beat clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the pinned dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

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

## Production processes (set CELERY_BROKER_URL, DATABASE_URL, REDIS_URL, SECRET_KEY first).
worker: install
	exec $(BIN)/celery -A automation worker --loglevel=INFO

beat: install
	exec $(BIN)/celery -A automation beat --loglevel=INFO

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
