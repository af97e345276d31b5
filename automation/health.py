"""Dependency checks behind GET /healthz.

Each check returns a small dict with ``status`` ("ok" or "fail") and, on failure, the error. A
check never raises: a dependency that is down is a result, not an exception.

Under ASGI ``HealthzFirst`` answers /healthz in front of Django's handler. Django runs every
sync part of a request (the request signals, WhiteNoise and the middleware after it, the view,
closing the response) in a thread it starts for that request, each a hop between the event loop
and that thread; under load every hop waits for the GIL behind the threads that ingest and route
large payloads, and a probe paid for five or more of them. Here the checks take one hop to a
pooled thread (the channel layer's round trip goes back to the loop), and they are the same
checks, against the real database.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from automation.celery import app as celery_app
from automation.models import Heartbeat

CHECK_TIMEOUT = 3.0  # seconds each network check may take before it counts as down

Check = dict[str, Any]

BACKGROUND = "background"


def heartbeat_record(*, name: str = BACKGROUND) -> Heartbeat:
    """Record that this process has just run a background job."""
    heartbeat, _ = Heartbeat.objects.update_or_create(
        name=name,
        defaults={"seen_at": timezone.now(), "worker": f"{socket.gethostname()}:{os.getpid()}"},
    )
    return heartbeat


def check_database() -> Check:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"status": "ok", "vendor": connection.vendor}


def check_broker() -> Check:
    if settings.EMBEDDED:
        # The embedded queue is a folder; it is "up" when this process can write to it.
        probe = settings.CELERY_QUEUE_DIR / ".healthz"
        probe.write_text(str(time.time()))
        probe.unlink()
        return {"status": "ok", "kind": "embedded"}
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT)
        return {"status": "ok", "kind": conn.transport_cls}


def check_channel_layer() -> Check:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")
    async_to_sync(_round_trip)(layer)
    return {"status": "ok", "kind": type(layer).__name__}


async def _round_trip(layer: Any) -> None:
    channel = await layer.new_channel("healthz.")
    await asyncio.wait_for(layer.send(channel, {"type": "healthz.ping"}), CHECK_TIMEOUT)
    message = await asyncio.wait_for(layer.receive(channel), CHECK_TIMEOUT)
    if message.get("type") != "healthz.ping":
        raise RuntimeError(f"unexpected message {message!r}")


def background_status() -> Check:
    """How long ago a scheduled job last ran on a worker (informational, never fails /healthz).

    It needs the database, so it is only asked when the database check passed.
    """
    heartbeat = Heartbeat.objects.filter(name=BACKGROUND).first()
    if heartbeat is None:
        return {"status": "unknown", "detail": "no background job has run yet"}
    age = (timezone.now() - heartbeat.seen_at).total_seconds()
    stale = age > 3 * settings.HEARTBEAT_INTERVAL + 10
    return {
        "status": "stale" if stale else "ok",
        "last_seen": heartbeat.seen_at.isoformat(),
        "age_seconds": round(age, 1),
        "worker": heartbeat.worker,
    }


CHECKS: dict[str, Callable[[], Check]] = {
    "database": check_database,
    "broker": check_broker,
    "channel_layer": check_channel_layer,
}


def run_checks() -> tuple[bool, dict[str, Check]]:
    """Run every check; returns (all required dependencies up, results by name)."""
    results: dict[str, Check] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            result = check()
        except Exception as exc:  # any failure means "down"; we report it
            result = {"status": "fail", "error": f"{exc.__class__.__name__}: {exc}"}
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        results[name] = result
    healthy = all(result["status"] == "ok" for result in results.values())
    if results["database"]["status"] == "ok":
        results["background"] = background_status()
    return healthy, results


def report() -> tuple[int, dict[str, Any]]:
    """The /healthz answer: 200 when every required dependency is up, else 503 naming those
    that are not."""
    healthy, checks = run_checks()
    failing = [name for name, result in checks.items() if result["status"] == "fail"]
    body = {"status": "ok" if healthy else "fail", "failing": failing, "checks": checks}
    return (200 if healthy else 503), body


def _report_in_thread() -> tuple[int, dict[str, Any]]:
    # The connections of this pooled thread live as a request's do: none kept past its age, and
    # one that broke (the database restarted) is replaced rather than reported as down forever.
    close_old_connections()
    try:
        return report()
    finally:
        close_old_connections()


HEALTHZ_PATHS = ("/healthz", "/healthz/")
_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"max-age=0, no-cache, no-store, must-revalidate, private"),
    (b"x-content-type-options", b"nosniff"),
]


class HealthzFirst:
    """ASGI: GET (and HEAD) /healthz answered before Django's handler (see the module's
    docstring); every other request, other methods on /healthz included, goes to ``app``."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] not in HEALTHZ_PATHS
            or scope["method"] not in ("GET", "HEAD")
        ):
            return await self.app(scope, receive, send)
        status, body = await sync_to_async(_report_in_thread, thread_sensitive=False)()
        content = json.dumps(body).encode()
        headers = [*_HEADERS, (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        body_bytes = b"" if scope["method"] == "HEAD" else content
        await send({"type": "http.response.body", "body": body_bytes})
