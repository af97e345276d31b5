"""Sending "advance run X" (and "run branch Y") after the current transaction commits.

The broker only carries these pointers; the state is in the database. When a send fails (the
broker is down) the work is not lost: the recovery sweep re-sends for runs left pending.
The backend is a port (automation.engine.ports): AutomationConfig.ready installs the Celery one
(automation.tasks); the testing harness swaps it for one that runs work in the test's own thread.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from automation.engine import ports

logger = logging.getLogger(__name__)


#: What sends the messages (automation.tasks.CeleryBackend, installed by AutomationConfig.ready).
Backend = ports.DispatchBackend


def set_backend(backend: Backend) -> Backend:
    """Install ``backend``; returns the previous one (for the testing harness)."""
    return ports.dispatch_backend_set(backend)


def advance(run_id: Any, *, priority: int = 0) -> None:
    """``priority``: a trigger's (higher goes to workers first); only a non-zero one is passed
    on, so a backend that knows nothing of priorities keeps working."""
    if priority:
        transaction.on_commit(lambda: _send("advance", str(run_id), priority=priority))
    else:
        transaction.on_commit(lambda: _send("advance", str(run_id)))


def branch(run_id: Any, step_id: str) -> None:
    transaction.on_commit(lambda: _send("branch", str(run_id), step_id))


def _send(what: str, *args: str, **options: Any) -> None:
    try:
        getattr(ports.dispatch_backend(), what)(*args, **options)
    except ports.PortNotFilled:
        raise  # a broken installation: no sweep will fix it
    except Exception:  # the recovery sweep re-sends; the state is safe in the database
        logger.exception("could not send %s%s; the recovery sweep will", what, args)
