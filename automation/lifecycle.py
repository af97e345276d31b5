"""What happened to runs and steps, told to whoever listens, after the change is committed.

The engine changes a run's or a step's status in many places (claims, steps, sweeps, services),
mostly with conditional UPDATEs that fire no model signals. Each of those places calls one of
the ``announce_*`` functions here, which sends a Django signal once the surrounding transaction
commits (at once outside a transaction), so a receiver always sees the committed state and never
hears of a change that was rolled back.

Receivers (the live UI, metrics, logs) connect to the signals like any Django signal::

    from automation.lifecycle import run_changed

    @receiver(run_changed)
    def on_run(sender, *, run_id, workflow, status, **kwargs): ...

A receiver that raises is logged and does not disturb the engine or the other receivers.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)


class AfterCommitSignal(Signal):
    """A signal sent once the current transaction commits; receivers that raise are logged."""

    def send_after_commit(self, **kwargs: Any) -> None:
        def send() -> None:
            for receiver, result in self.send_robust(sender=None, **kwargs):
                if isinstance(result, Exception):
                    logger.error("lifecycle receiver %r failed", receiver, exc_info=result)

        transaction.on_commit(send, robust=True)


#: A run was created or changed status. kwargs: run_id, workflow (its name, "" where the
#: change was made knowing only the id), status, and ``created`` (True for a new run).
run_changed = AfterCommitSignal()

#: A step's journal record changed status. kwargs: run_id, step_id, kind, status, attempt,
#: started_at, finished_at (datetimes or None), retrying (True when a retry was scheduled).
step_changed = AfterCommitSignal()

#: A durable timer fired. kwargs: run_id, kind, due_at, fired_at.
timer_fired = AfterCommitSignal()


def _send_after_commit(signal: AfterCommitSignal, **kwargs: Any) -> None:
    signal.send_after_commit(**kwargs)


def announce_run(run_id: Any, status: str, *, workflow: str = "", created: bool = False) -> None:
    _send_after_commit(
        run_changed, run_id=run_id, workflow=workflow, status=str(status), created=created
    )


def announce_step(
    run_id: Any,
    step_id: str,
    *,
    kind: str,
    status: str,
    attempt: int = 0,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    retrying: bool = False,
) -> None:
    _send_after_commit(
        step_changed,
        run_id=run_id,
        step_id=step_id,
        kind=str(kind),
        status=str(status),
        attempt=attempt,
        started_at=started_at,
        finished_at=finished_at,
        retrying=retrying,
    )


def announce_timer(run_id: Any, kind: str, due_at: datetime, fired_at: datetime) -> None:
    _send_after_commit(timer_fired, run_id=run_id, kind=str(kind), due_at=due_at, fired_at=fired_at)
