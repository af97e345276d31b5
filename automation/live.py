"""Live updates: tell open browser pages that something changed, from wherever the work ran.

Pages listen on WebSocket groups (see the consumers); this module turns the after-commit
lifecycle signals into small notices on those groups. A notice says *what* changed (a run, a
step, an approval); the page then fetches the fragment it shows, through the same views and
permission checks as a full page load, so a notice never carries data its reader may not see.

Groups:

- ``run.<id>``: one run's timeline (its steps and status).
- ``runs``: the runs list.
- ``dashboard``: counts and the last hour's chart.
- ``events``: the events list.
- ``approvals.user.<id>``, ``approvals.group.<id>``, ``approvals.all``: approval inboxes (see
  approvals.live).

Publishing never blocks the engine: a notice is appended to this process's queue and the caller
moves on; one sender per process drains the queue in order. Notices are best effort (a page
that missed one catches up on its next load or reconnect), so losing a queue with its process
loses nothing that matters.

- With Redis (production: channels_redis's ``RedisPubSubChannelLayer``) the sender is a thread
  that PUBLISHes what piled up in one pipelined round trip, at once after a quiet spell and at
  most once per ``BATCH_WINDOW`` when busy. A worker used to spend a third of its CPU per run
  on notices (an event loop woken per notice, four Redis round trips and a Lua script per
  ``group_send`` of the sorted-set layer); now it is one round trip per window, whatever its
  rate (bench/README.md, "live notices").
- With the in-process layer (embedded mode, tests) it is the loop the WebSocket consumers of
  this process run on, because that layer's queues belong to that loop and may only be touched
  from it.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
from collections import deque
from typing import Any

import redis
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import receiver

from automation import lifecycle
from events.signals import event_recorded

logger = logging.getLogger(__name__)

#: Seconds a busy process waits between two round trips to Redis: the most a notice waits for
#: the ones after it (the run page's budget, step finished to screen, is 100 ms at p99).
BATCH_WINDOW = 0.02

#: Groups of list pages, which re-fetch at most every half second or second: one notice of each
#: kind per batch is all they can use. A run page and the inboxes hear every notice.
LIST_GROUPS = frozenset({"runs", "dashboard", "events"})

Notice = tuple[Any, list[str], dict[str, Any]]  # (layer, groups, message)

_consumer_loop: asyncio.AbstractEventLoop | None = None
_senders_lock = threading.Lock()
_loop_senders: dict[asyncio.AbstractEventLoop, _LoopSender] = {}
_redis_sender: _RedisSender | None = None


def consumer_loop_started(loop: asyncio.AbstractEventLoop) -> None:
    """Called by each consumer on connect: the loop the in-process layer lives on."""
    global _consumer_loop
    _consumer_loop = loop


class _RedisSender:
    """PUBLISHes this process's notices from a thread, in order, a batch per round trip.

    ``RedisPubSubChannelLayer`` subscribes a process's consumers of a group to one pub/sub
    channel, and its ``group_send`` is one PUBLISH there; this sends the same PUBLISHes, but
    pipelined, from a plain thread and a plain Redis client instead of an event loop.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        if len(config["hosts"]) != 1:
            raise ImproperlyConfigured("CHANNEL_LAYERS: live notices support one Redis host")
        self.prefix = config.get("prefix", "asgi")
        # Timeouts: a Redis that stopped answering holds up notices, never this thread forever.
        self.client = redis.Redis.from_url(
            config["hosts"][0], socket_timeout=5, socket_connect_timeout=5
        )
        self.queue: deque[Notice] = deque()
        self.ready = threading.Condition()
        self.idle = threading.Event()
        self.idle.set()
        threading.Thread(target=self._run, name="live-publisher", daemon=True).start()

    def put(self, layer: Any, groups: list[str], message: dict[str, Any]) -> None:
        with self.ready:
            self.queue.append((layer, groups, message))
            self.idle.clear()
            self.ready.notify()

    def _run(self) -> None:
        sent_at = -BATCH_WINDOW
        while True:
            with self.ready:
                while not self.queue:
                    self.idle.set()
                    self.ready.wait()
            wait = sent_at + BATCH_WINDOW - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # busy: let the next notices join this round trip
            sent_at = time.monotonic()
            with self.ready:
                batch = list(self.queue)
                self.queue.clear()
            self._publish(batch)

    def _publish(self, batch: list[Notice]) -> None:
        try:
            pipe = self.client.pipeline(transaction=False)
            for layer, group, message in _coalesced(batch):
                # RedisPubSubChannelLayer's name for a group's channel (_get_group_channel_name).
                pipe.publish(f"{self.prefix}__group__{group}", layer.serialize(message))
            pipe.execute()
        except Exception:  # best effort: the pages catch up on their next load
            logger.warning("live: could not send %d notices", len(batch), exc_info=True)


class _LoopSender:
    """Sends this process's notices on ``loop``, in order, one ``group_send`` at a time.

    A notice is an append to a queue; the loop is woken only when it is idle, and drains what
    piled up (a coroutine per notice cost a burst a wake-up of the loop each).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: deque[Notice] = deque()
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


def _coalesced(batch: list[Notice]) -> list[tuple[Any, str, dict[str, Any]]]:
    """One send per group and notice, except on LIST_GROUPS, where only the last notice of each
    kind is kept: at engine and webhook rates the notices of every run and event would cost
    more than the lists they refresh."""
    sends = [(layer, group, message) for layer, groups, message in batch for group in groups]
    last = {(g, m.get("kind")): n for n, (_, g, m) in enumerate(sends) if g in LIST_GROUPS}
    return [
        (layer, g, m)
        for n, (layer, g, m) in enumerate(sends)
        if g not in LIST_GROUPS or last[(g, m.get("kind"))] == n
    ]


def _sender(layer: Any) -> _RedisSender | _LoopSender | None:
    global _redis_sender
    if isinstance(layer, RedisPubSubChannelLayer):
        with _senders_lock:
            if _redis_sender is None:
                _redis_sender = _RedisSender(settings.CHANNEL_LAYERS["default"]["CONFIG"])
            return _redis_sender
    if not isinstance(layer, InMemoryChannelLayer):
        raise ImproperlyConfigured(
            f"live notices need RedisPubSubChannelLayer or InMemoryChannelLayer, "
            f"not {type(layer).__name__}"
        )
    loop = _consumer_loop
    if loop is None or loop.is_closed():
        return None  # no consumer ever connected in this process: there is no page to tell
    with _senders_lock:
        sender = _loop_senders.get(loop)
        if sender is None:
            for closed in [known for known in _loop_senders if known.is_closed()]:
                del _loop_senders[closed]
            sender = _loop_senders[loop] = _LoopSender(loop)
        return sender


def _forget_senders() -> None:
    """A forked child (a Celery pool process) has none of its parent's threads: it starts its
    own sender (and a fresh lock, which another thread may have held at the fork)."""
    global _redis_sender, _senders_lock
    _redis_sender = None
    _senders_lock = threading.Lock()
    _loop_senders.clear()


os.register_at_fork(after_in_child=_forget_senders)


def publish(groups: list[str], message: dict[str, Any]) -> None:
    """Send ``message`` (a dict with ``type`` naming the consumer handler) to ``groups``."""
    layer = get_channel_layer()
    sender = _sender(layer) if layer is not None else None
    if sender is not None:
        sender.put(layer, groups, message)


@atexit.register
def _flush(timeout: float = 2.0) -> None:
    """A short-lived process (a management command) sends its last notices before it exits."""
    deadline = time.monotonic() + timeout
    senders = [s for s in _loop_senders.values() if not s.loop.is_closed()]
    for sender in [*senders, *([_redis_sender] if _redis_sender else [])]:
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
