"""Live updates: tell open browser pages that something changed, from wherever the work ran.

Pages listen on WebSocket groups (see the consumers); this module turns the after-commit
lifecycle signals into small notices on those groups. A notice says *what* changed (a run, a
step, an approval); the page then fetches the fragment it shows, through the same views and
permission checks as a full page load, so a notice never carries data its reader may not see.

Groups:

- ``run.<id>``: one run's timeline (its steps and status).
- ``runs``: the runs list.
- ``dashboard``: counts and the last hour's chart.
- ``approvals.user.<id>``, ``approvals.group.<id>``, ``approvals.all``: approval inboxes (see
  approvals.live).

Publishing never blocks the engine: a notice is handed to an event loop and the caller moves
on. With Redis (production) that is a background loop of this process that keeps its Redis
connections; with the in-process layer (embedded mode, tests) it is the loop the WebSocket
consumers of this process run on, because the in-process layer's queues belong to that loop
and may only be touched from it.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
from collections import deque
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.dispatch import receiver

from automation import lifecycle
from events.signals import event_recorded

logger = logging.getLogger(__name__)

_consumer_loop: asyncio.AbstractEventLoop | None = None
_publisher_loop: asyncio.AbstractEventLoop | None = None
_publisher_lock = threading.Lock()
_senders: dict[asyncio.AbstractEventLoop, _Sender] = {}


def consumer_loop_started(loop: asyncio.AbstractEventLoop) -> None:
    """Called by each consumer on connect: the loop the in-process layer lives on."""
    global _consumer_loop
    _consumer_loop = loop


def _background_loop() -> asyncio.AbstractEventLoop:
    global _publisher_loop
    with _publisher_lock:
        if _publisher_loop is None or _publisher_loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="live-publisher", daemon=True).start()
            _publisher_loop = loop
        return _publisher_loop


def _target_loop(layer: Any) -> asyncio.AbstractEventLoop | None:
    if isinstance(layer, InMemoryChannelLayer):
        # No consumer ever connected in this process: there is no page to tell.
        if _consumer_loop is None or _consumer_loop.is_closed():
            return None
        return _consumer_loop
    return _background_loop()


class _Sender:
    """Sends this process's notices on ``loop``, in order, one ``group_send`` at a time.

    A coroutine per notice let a burst (a web process taking hundreds of webhooks a second)
    open as many Redis connections at once, until the pool refused them ("Too many
    connections") and cost the request threads a wake-up of the loop each. Here a notice is an
    append to a queue; the loop is woken only when it is idle, and drains what piled up.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: deque[tuple[Any, list[str], dict[str, Any]]] = deque()
        self.lock = threading.Lock()
        self.draining = False
        self.idle = threading.Event()
        self.idle.set()
        self.task: asyncio.Task | None = None

    def put(self, layer: Any, groups: list[str], message: dict[str, Any]) -> None:
        with self.lock:
            self.queue.append((layer, groups, message))
            if self.draining:
                return
            self.draining = True
            self.idle.clear()
        try:
            self.loop.call_soon_threadsafe(self._start)
        except RuntimeError:  # the loop was closed meanwhile: nobody is listening on it
            self._stop()

    def _start(self) -> None:
        self.task = self.loop.create_task(self._drain())

    def _stop(self) -> None:
        with self.lock:
            self.queue.clear()
            self.draining = False
            self.idle.set()

    async def _drain(self) -> None:
        try:
            while True:
                with self.lock:
                    batch = list(self.queue)
                    self.queue.clear()
                    if not batch:
                        self.draining = False
                        self.idle.set()
                        return
                for layer, group, message in _coalesced(batch):
                    try:
                        await layer.group_send(group, message)
                    except Exception:  # best effort: the page catches up on its next load
                        logger.warning("live: could not notify %s", group, exc_info=True)
        except BaseException:
            self._stop()
            raise


def _coalesced(
    batch: list[tuple[Any, list[str], dict[str, Any]]],
) -> list[tuple[Any, str, dict[str, Any]]]:
    """One send per group and notice, where only the last "event" notice per group is kept: a
    page re-fetches its list at most once a second anyway, and at webhook rates the notices of
    every single event would cost more than storing the events."""
    sends = [(layer, group, message) for layer, groups, message in batch for group in groups]
    last_event = {group: n for n, (_, group, m) in enumerate(sends) if m.get("kind") == "event"}
    return [
        send
        for n, send in enumerate(sends)
        if send[2].get("kind") != "event" or last_event[send[1]] == n
    ]


def _sender(loop: asyncio.AbstractEventLoop) -> _Sender:
    with _publisher_lock:
        sender = _senders.get(loop)
        if sender is None:
            for closed in [known for known in _senders if known.is_closed()]:
                del _senders[closed]
            sender = _senders[loop] = _Sender(loop)
        return sender


def publish(groups: list[str], message: dict[str, Any]) -> None:
    """Send ``message`` (a dict with ``type`` naming the consumer handler) to ``groups``."""
    layer = get_channel_layer()
    if layer is None:
        return
    loop = _target_loop(layer)
    if loop is None:
        return
    _sender(loop).put(layer, groups, message)


@atexit.register
def _flush(timeout: float = 2.0) -> None:
    """A short-lived process (a management command) sends its last notices before it exits."""
    deadline = time.monotonic() + timeout
    for sender in list(_senders.values()):
        if not sender.loop.is_closed():
            sender.idle.wait(max(0.0, deadline - time.monotonic()))


def notice(kind: str, **data: Any) -> dict[str, Any]:
    """The message every consumer forwards to its page as ``{"kind": ..., ...}``."""
    return {"type": "live.notice", "kind": kind, **{k: _plain(v) for k, v in data.items()}}


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


@receiver(lifecycle.run_changed, dispatch_uid="live.run_changed")
def _on_run(sender: Any, *, run_id: Any, status: str, workflow: str = "", **_: Any) -> None:
    publish(
        [f"run.{run_id}", "runs", "dashboard"],
        notice("run", run_id=run_id, status=status, workflow=workflow),
    )


@receiver(lifecycle.step_changed, dispatch_uid="live.step_changed")
def _on_step(sender: Any, *, run_id: Any, step_id: str, status: str, **_: Any) -> None:
    publish([f"run.{run_id}"], notice("step", run_id=run_id, step_id=step_id, status=status))


@receiver(event_recorded, dispatch_uid="live.event_recorded")
def _on_event(sender: Any, *, event_id: Any, type: str, **_: Any) -> None:
    publish(["dashboard", "events"], notice("event", event_id=event_id, event_type=type))
