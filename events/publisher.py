"""Sends "route these events" to the broker from a background thread of each process.

The request that stored an event only appends its id here, after commit; this process's
publisher thread sends it. When idle it sends at once, one ``events.route_event`` message per
event. When events pile up it sends at most one message per ``EVENTS_PUBLISH_INTERVAL``,
``events.route_events`` with every id that piled up meanwhile: a Celery publish costs about
half a millisecond of CPU, as much as the rest of a webhook request, and under load one
message then carries many events.

Losing an id here loses nothing. The event is committed with ``routed_at`` empty, and
``events.sweep_unrouted`` routes it once it is older than ``ROUTING_GRACE`` if no message came
(the process was killed with ids queued, or the broker was down). Exactly once is the routing
claim on ``routed_at``, never this queue.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable

from django.conf import settings

logger = logging.getLogger(__name__)

# Most ids in one message: a worker routes them one after the other, so a cap bounds how long
# the last one waits for the others (and keeps several workers busy under load).
MAX_BATCH = 50


class Publisher:
    """A queue of event ids and the thread that hands them to ``send`` (one per process)."""

    def __init__(self, send: Callable[[list[str]], None]) -> None:
        self.send = send
        self._reset()

    def _reset(self) -> None:
        lock = threading.Lock()
        self.has_ids = threading.Condition(lock)  # the thread waits here for ids (or a flush)
        self.drained = threading.Condition(lock)  # ``flush`` waits here for the thread
        self.pending: deque[str] = deque()
        self.thread: threading.Thread | None = None
        self.idle = False  # the thread waits for ids: only then is it worth waking
        self.busy = False  # a message is being sent
        self.hurry = False  # a flush is waiting: send without waiting for more ids
        self.last_sent = -float("inf")

    def put(self, event_id: str) -> None:
        with self.has_ids:
            self.pending.append(event_id)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._run, name="events-publisher", daemon=True
                )
                self.thread.start()
            elif self.idle:
                self.has_ids.notify()

    def _run(self) -> None:
        while True:
            with self.has_ids:
                batch = self._next_batch()
                self.busy = True
            try:
                self.last_sent = time.monotonic()
                self.send(batch)
            except Exception:  # the broker is down: the events stay unrouted in the table
                logger.exception(
                    "could not send the routing of %d events; events.sweep_unrouted will route "
                    "them",
                    len(batch),
                )
            finally:
                with self.drained:
                    self.busy = False
                    self.drained.notify_all()

    def _next_batch(self) -> list[str]:
        """Wait for ids; then, if the last message left less than EVENTS_PUBLISH_INTERVAL ago
        (busy), wait out the interval so the ids arriving meanwhile join this message."""
        self.idle = True
        while not self.pending:
            self.has_ids.wait()
        self.idle = False
        due = self.last_sent + settings.EVENTS_PUBLISH_INTERVAL
        while not self.hurry and (left := due - time.monotonic()) > 0:
            self.has_ids.wait(left)
        return [self.pending.popleft() for _ in range(min(MAX_BATCH, len(self.pending)))]

    def flush(self, timeout: float) -> bool:
        """Send every queued id now and wait until it was handed to the broker (or given up);
        True if that happened within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self.drained:
            self.hurry = True
            self.has_ids.notify()
            try:
                while self.pending or self.busy:
                    left = deadline - time.monotonic()
                    if left <= 0 or self.thread is None or not self.thread.is_alive():
                        return False
                    self.drained.wait(left)
            finally:
                self.hurry = False
        return True


def send(event_ids: list[str]) -> None:
    """Publish one message routing ``event_ids`` (without Celery's publish retries: a broker
    that is down is the sweep's business, not a reason to hold up the ids queued behind)."""
    from events.tasks import route_event, route_events

    if len(event_ids) == 1:
        route_event.apply_async((event_ids[0],), retry=False)
    else:
        route_events.apply_async((event_ids,), retry=False)


_publisher = Publisher(send)
# A forked child (a Celery pool process, a gunicorn worker with --preload) starts empty: the
# parent's queued ids are the parent's to send, and its thread does not exist in the child.
os.register_at_fork(after_in_child=_publisher._reset)


def route(event_id: str) -> None:
    """Queue ``event_id`` for routing (call after its transaction committed)."""
    _publisher.put(event_id)


@atexit.register
def _flush_at_exit() -> None:
    """A process that exits normally (a management command, a gunicorn worker told to stop)
    sends what it queued instead of leaving it to the sweep's grace period."""
    _publisher.flush(timeout=5.0)
