"""Sending "advance run X" (and "run branch Y") after the current transaction commits.

The broker only carries these pointers; the state is in the database. When a send fails (the
broker is down) the work is not lost: the recovery sweep re-sends for runs left pending.
The testing harness swaps the backend for one that runs work in the test's own thread.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from django.db import transaction

logger = logging.getLogger(__name__)


class Backend(Protocol):
    def advance(self, run_id: str) -> None: ...

    def branch(self, run_id: str, step_id: str) -> None: ...


class CeleryBackend:
    """Publishes without Celery's publish retries: with the broker down, a request (a webhook)
    must not hang on them. A message that could not be sent is re-sent by the sweeps."""

    def advance(self, run_id: str) -> None:
        from automation.tasks import advance_run

        advance_run.apply_async((run_id,), retry=False)

    def branch(self, run_id: str, step_id: str) -> None:
        from automation.tasks import run_branch

        run_branch.apply_async((run_id, step_id), retry=False)


_backend: Backend = CeleryBackend()


def set_backend(backend: Backend) -> Backend:
    """Install ``backend``; returns the previous one (for the testing harness)."""
    global _backend
    previous, _backend = _backend, backend
    return previous


def advance(run_id: Any) -> None:
    transaction.on_commit(lambda: _send("advance", str(run_id)))


def branch(run_id: Any, step_id: str) -> None:
    transaction.on_commit(lambda: _send("branch", str(run_id), step_id))


def _send(what: str, *args: str) -> None:
    try:
        getattr(_backend, what)(*args)
    except Exception:  # the recovery sweep re-sends; the state is safe in the database
        logger.exception("could not send %s%s; the recovery sweep will", what, args)
