"""Run leases: which worker is executing a run, and until when it is presumed alive.

A worker takes a run with a conditional UPDATE (pending → running, with its name and an expiry),
so exactly one worker wins on every database. A worker killed mid-step stops renewing; once the
lease expires the recovery sweep hands the run to another worker.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from django.conf import settings
from django.db import connections
from django.db.models import QuerySet

from automation.engine import clock, transitions
from automation.engine.errors import Cancelled, LeaseLost, Paused
from automation.models import Run

if TYPE_CHECKING:
    from automation.engine.context import Context

logger = logging.getLogger(__name__)


def new_owner() -> str:
    """A name unique to this attempt: host, process, thread and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


def _duration(extra: float = 0) -> timedelta:
    return timedelta(seconds=settings.AUTOMATION_LEASE_SECONDS + extra)


def claim(run_id: Any, owner: str) -> bool:
    """Take a pending run. False when it is not pending (finished, waiting, held by another
    worker, or held back by its concurrency limit): then there is nothing to do."""
    now = clock.now()
    return transitions.transition(
        run_id, "claim", now=now, lease_owner=owner, lease_expires_at=now + _duration()
    )


def hold(run: Run, owner: str) -> None:
    """Mark a run about to be created as already taken by ``owner`` (``claim`` without the
    UPDATE: the creator advances it at once)."""
    now = clock.now()
    transitions.prepare(run, "hold", now=now, lease_owner=owner, lease_expires_at=now + _duration())


def take_finished(run_id: Any, owner: str) -> bool:
    """Hold a finished run to write to its journal (its parent compensating it). False when
    another worker holds it and its lease has not expired."""
    now = clock.now()
    return transitions.transition(
        run_id, "take_finished", now=now, lease_owner=owner, lease_expires_at=now + _duration()
    )


def release(run_id: Any, owner: str) -> None:
    """Let go of a run held by ``owner`` (if it still is)."""
    transitions.transition(run_id, "let_go", lease_owner=owner)


def renew(ctx: Context, extra: float = 0) -> None:
    """Before each step: extend our lease (by the step's timeout too) and learn whether the run
    was cancelled meanwhile, in one UPDATE. Raises Cancelled, or LeaseLost when another worker
    took the run."""
    if ctx.owner is None:
        return
    expires = clock.now() + _duration(extra)
    if still_mine(ctx).update(lease_expires_at=expires):
        ctx.run.lease_expires_at = expires
        return
    refused(ctx)


def renewal_due(ctx: Context, extra: float = 0) -> bool:
    """Whether a step must ``renew`` before it starts: it has a timeout (the lease must cover
    it), or a third of the lease has passed. Otherwise the step's first write checks the lease
    and the cancel request itself (``still_mine``), one statement less per step; the keeper
    renews while the step runs either way."""
    expires = ctx.run.lease_expires_at
    if extra or expires is None:
        return True
    return expires - clock.now() < _duration() * 2 / 3


def still_mine(ctx: Context) -> QuerySet[Run]:
    """The run while we hold its lease and, unless we are cancelling, nobody asked to cancel
    or to pause it."""
    if ctx.cancelling:
        return held(ctx)
    return held(ctx).filter(cancel_requested=False, pause_requested=False)


def held(ctx: Context) -> QuerySet[Run]:
    """The run while we hold its lease, cancel requested or not."""
    return Run.objects.filter(id=ctx.run.id, lease_owner=ctx.owner)


def refused(ctx: Context) -> NoReturn:
    """Raise why ``still_mine`` found nothing: Cancelled (or Paused) if the run is still ours,
    else LeaseLost (another worker took the run)."""
    if not ctx.cancelling and learn_requests(ctx):
        if ctx.run.cancel_requested:
            raise Cancelled("cancel requested")
        raise Paused("pause requested")
    raise LeaseLost("the run's lease was taken over by another worker")


def learn_requests(ctx: Context) -> bool:
    """Read whether an operator asked to cancel or pause the run we hold, into ``ctx.run``.
    False when we no longer hold it."""
    flags = held(ctx).values_list("cancel_requested", "pause_requested").first()
    if flags is None:
        return False
    ctx.run.cancel_requested, ctx.run.pause_requested = flags
    return True


def keep_run(ctx: Context, extra: float = 0) -> AbstractContextManager[None]:
    """Keep renewing our lease on the run while a step runs (a long step is not a dead worker)."""
    owner = ctx.owner

    def renew_once() -> bool:
        expires = clock.now() + _duration(extra)
        return bool(
            Run.objects.filter(id=ctx.run.id, lease_owner=owner).update(lease_expires_at=expires)
        )

    return keeping(renew_once) if owner else nullcontext()


@contextmanager
def keeping(renew_once: Callable[[], bool], every: float | None = None) -> Iterator[None]:
    """Call ``renew_once`` every third of a lease (or ``every`` seconds) until the block ends
    or it returns False (the lease is gone). Problems are logged, never raised: whatever the
    step records is written conditionally anyway."""
    period = every if every is not None else max(0.2, settings.AUTOMATION_LEASE_SECONDS / 3)
    token = _keeper.add(renew_once, period)
    try:
        yield
    finally:
        _keeper.remove(token)


class _Keeper:
    """One daemon thread per process renews the leases of every step running in it. A thread
    started per step cost more than a no-op step itself (bench/engine.py)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._entries: dict[int, list[Any]] = {}  # token -> [next due (monotonic), period, renew]
        self._tokens = itertools.count()
        self._pid = 0
        self._wakes_at: float | None = None  # when the thread wakes next; None: when told to

    def add(self, renew_once: Callable[[], bool], period: float) -> int:
        with self._changed:
            if self._pid != os.getpid():  # first use in this process (a fork has no thread)
                self._pid = os.getpid()
                self._entries.clear()
                self._wakes_at = None
                threading.Thread(target=self._loop, name="lease-keeper", daemon=True).start()
            token = next(self._tokens)
            due = time.monotonic() + period
            self._entries[token] = [due, period, renew_once]
            # Wake the thread only if it would sleep past this entry: steps a few milliseconds
            # long come and go without waking it each time.
            if self._wakes_at is None or due < self._wakes_at:
                self._wakes_at = due
                self._changed.notify()
        return token

    def remove(self, token: int) -> None:
        with self._changed:
            self._entries.pop(token, None)

    def _loop(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                due = [(token, entry) for token, entry in self._entries.items() if entry[0] <= now]
                if not due:
                    earliest = min((entry[0] for entry in self._entries.values()), default=None)
                    self._wakes_at = earliest
                    self._changed.wait(None if earliest is None else earliest - now)
                    continue
                for _, entry in due:
                    entry[0] = now + entry[1]
            for token, (_, _, renew_once) in due:
                try:
                    if not renew_once():
                        self.remove(token)
                except Exception:
                    logger.exception("could not renew a lease; the step goes on")
            connections.close_all()  # this thread's own connections: renewals are rare


_keeper = _Keeper()
