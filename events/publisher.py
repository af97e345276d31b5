"""Sends "route these events" to the broker from a background thread of each process.

The request that stored an event only appends its id here after commit (``route_after_commit``);
this process's publisher thread sends it: ``events.route_event`` for one id,
``events.route_events`` for the ids that piled up meanwhile. A Celery publish costs 0.3-1.5 ms
of CPU, as much as the rest of a webhook request, so under load one message must carry many
events.

How long the thread lets ids pile up between two messages (its window) grows with the square
of the rate it sends at: ``EVENTS_PUBLISH_MAX_WAIT`` (50 ms) from ``FULL_WAIT_RATE`` (500
events/s) up, ``(rate / 500)²`` of it below, and a message with ``MAX_BATCH`` ids leaves at
once. At a low rate the broker's CPU is cheap and latency is what counts: at 100 events/s the
window is 2 ms and nearly every event leaves alone, at once (an idle process always sends at
once). At a high rate CPU is what counts: at 250/s about 3 events share a message (12.5 ms), at
500/s 20 (a message per 40 ms), and faster a message leaves as soon as it has 20 (every 20 ms
at 1,000/s). A busy web worker then spends a few percent of its CPU on publishing instead of
a third with one message per event.

Losing an id here loses nothing. The event is committed with ``routed_at`` empty, and
``events.sweep_unrouted`` routes it once it is older than ``ROUTING_GRACE`` if no message came
(the process was killed with ids queued, or the broker was down). Exactly once is the routing
claim on ``routed_at``, never this queue.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

# Most ids in one message: a worker routes them one after the other, each with its first run's
# first step, so a cap bounds how long the last one waits for the others (and keeps several
# workers busy under load). A full batch is sent without waiting for the window.
MAX_BATCH = 20
# Events/s from which a message waits the whole EVENTS_PUBLISH_MAX_WAIT (see above).
FULL_WAIT_RATE = 500.0


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
        self.recent: deque[tuple[float, int]] = deque()  # (sent at, ids) in the last second

    def put(self, event_id: str) -> None:
        with self.has_ids:
            self.pending.append(event_id)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._run, name="events-publisher", daemon=True
                )
                self.thread.start()
            elif self.idle or len(self.pending) == MAX_BATCH:
                self.has_ids.notify()

    def _run(self) -> None:
        while True:
            with self.has_ids:
                batch = self._next_batch()
                self.busy = True
            try:
                self._sent(len(batch))
                self.send(batch)
            except Exception:
                self._give_up(len(batch))
            finally:
                with self.drained:
                    self.busy = False
                    self.drained.notify_all()

    def _give_up(self, failed: int) -> None:
        """The broker is down: drop what is queued too, rather than pile up ids (and a backlog
        of messages) while every send waits for its connect timeout. The events are in the
        table, unrouted: the sweep routes them."""
        with self.has_ids:
            dropped = len(self.pending)
            self.pending.clear()
        logger.exception(
            "could not send the routing of %d events (%d more queued dropped); "
            "events.sweep_unrouted will route them",
            failed,
            dropped,
        )

    def _next_batch(self) -> list[str]:
        """Wait for ids, then for the rest of the window since the last message."""
        self.idle = True
        while not self.pending:
            self.has_ids.wait()
        self.idle = False
        due = self.last_sent + self._window()
        while not self.hurry and len(self.pending) < MAX_BATCH:
            left = due - time.monotonic()
            if left <= 0:
                break
            self.has_ids.wait(left)
        return [self.pending.popleft() for _ in range(min(MAX_BATCH, len(self.pending)))]

    def _window(self) -> float:
        """Seconds between two messages: grows with the square of the number of events sent
        in the last second, so the faster events arrive, the more each message carries."""
        now = time.monotonic()
        while self.recent and self.recent[0][0] < now - 1.0:
            self.recent.popleft()
        rate = sum(count for _, count in self.recent)
        return settings.EVENTS_PUBLISH_MAX_WAIT * min(1.0, (rate / FULL_WAIT_RATE) ** 2)

    def _sent(self, count: int) -> None:
        self.last_sent = time.monotonic()
        self.recent.append((self.last_sent, count))

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


class CelerySend:
    """Publishes one message routing the given ids, through a broker connection of its own
    that only the publisher thread uses: taking one from Celery's pool for every message cost
    a sixth of the publish. Without Celery's publish retries: a broker that is down is the
    sweep's business, not a reason to hold up the ids queued behind."""

    def __init__(self) -> None:
        self.producer: Any = None

    def __call__(self, event_ids: list[str]) -> None:
        from events.tasks import route_event, route_events

        if self.producer is None:
            app = route_event.app
            self.producer = app.amqp.Producer(app.connection_for_write())
        try:
            if len(event_ids) == 1:
                route_event.apply_async((event_ids[0],), retry=False, producer=self.producer)
            else:
                route_events.apply_async((event_ids,), retry=False, producer=self.producer)
        except Exception:
            self.reset()  # a fresh connection for the next message
            raise

    def reset(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            with contextlib.suppress(Exception):  # it is broken already
                producer.connection.close()


_send = CelerySend()
_publisher = Publisher(_send)


def _after_fork() -> None:
    # A forked child (a Celery pool process, a gunicorn worker with --preload) starts empty: the
    # parent's queued ids are the parent's to send, its thread does not exist in the child, and
    # its broker connection is the parent's.
    _send.producer = None
    _publisher._reset()


os.register_at_fork(after_in_child=_after_fork)


def route(event_id: str) -> None:
    """Queue ``event_id`` for routing (call after its transaction committed)."""
    _publisher.put(event_id)


#: Where "route event X" goes once the event's transaction committed: this process's publisher
#: thread, or what ``set_router`` installed instead (the testing harness queues it in memory).
_router: Callable[[str], None] = route


def set_router(router: Callable[[str], None]) -> Callable[[str], None]:
    """Install ``router``; returns the previous one (for the testing harness)."""
    global _router
    previous, _router = _router, router
    return previous


def route_after_commit(event_id: Any) -> None:
    """Route ``event_id`` once the surrounding transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _route(str(event_id)))


def _route(event_id: str) -> None:
    try:
        _router(event_id)
    except Exception:  # the event is stored unrouted: events.sweep_unrouted routes it
        logger.exception("could not send the routing of event %s; the sweep will", event_id)


@atexit.register
def _flush_at_exit() -> None:
    """A process that exits normally (a management command, a gunicorn worker told to stop)
    sends what it queued instead of leaving it to the sweep's grace period."""
    _publisher.flush(timeout=5.0)
