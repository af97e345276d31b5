"""Run leases: which worker is executing a run, and until when it is presumed alive.

A worker takes a run with a conditional UPDATE (pending → running, with its name and an expiry),
so exactly one worker wins on every database. A worker killed mid-step stops renewing; once the
lease expires the recovery sweep hands the run to another worker.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import F
from django.db.models.functions import Coalesce

from automation.engine import clock
from automation.engine.errors import LeaseLost
from automation.models import Run, RunStatus

if TYPE_CHECKING:
    from automation.engine.context import Context


def new_owner() -> str:
    """A name unique to this attempt: host, process, thread and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


def _duration(extra: float = 0) -> timedelta:
    return timedelta(seconds=settings.AUTOMATION_LEASE_SECONDS + extra)


def claim(run_id: Any, owner: str) -> bool:
    """Take a pending run. False when it is not pending (finished, waiting, held by another
    worker, or held back by its concurrency limit): then there is nothing to do."""
    now = clock.now()
    return bool(
        Run.objects.filter(id=run_id, status=RunStatus.PENDING, queued=False).update(
            status=RunStatus.RUNNING,
            lease_owner=owner,
            lease_expires_at=now + _duration(),
            started_at=Coalesce(F("started_at"), now),
        )
    )


def renew(ctx: Context, extra: float = 0) -> None:
    """Extend our lease before a step runs (by its timeout too); LeaseLost if it was taken."""
    owner = getattr(ctx, "owner", None)
    if owner is None:
        return
    expires = clock.now() + _duration(extra)
    if not Run.objects.filter(id=ctx.run.id, lease_owner=owner).update(lease_expires_at=expires):
        raise LeaseLost("the run's lease was taken over by another worker")
