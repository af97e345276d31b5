#!/usr/bin/env python3
"""CPU per webhook request, in one process: the before/after figure a noisy machine allows.

Calls the WSGI application directly (as a gunicorn sync worker does, without the socket) with
pre-signed Standard Webhooks requests and with the bare view's requests, and prints the
process CPU time (time.process_time: every thread, so the publisher thread's too) and wall time
per request of each variant, the variants alternating round by round, then each one's median:
bare view; ingest in publish mode (events.publisher); ingest with the publish in the request
as it was before events.publisher ("publish inline"); ingest in outbox mode. ``--profile``
prints the top of a cProfile (CPU time) of the last chosen variant instead.

    .venv/bin/python bench/ingest_cpu.py [--requests 2000] [--rounds 3] [--variants bare outbox]

The figures in bench/README.md ("ingest, 2026-11-24") are medians of 5 rounds of 1500.

Uses the database automation_bench_ingest_cpu (BENCH_PG, created and dropped) and Redis DB 13
(BENCH_REDIS_URL, emptied), as bench/ingest.py does; nothing consumes the published messages.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import drop_database, project_env, recreate_database, setup_django  # noqa: E402
from bench.ingest import add_server_arguments, create_bare_table  # noqa: E402

DB_NAME = "automation_bench_ingest_cpu"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--variants", nargs="*", default=list(variants()), help="which of: " + ", ".join(variants())
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callees", nargs="*", help="with --profile: whose callees to print")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CI check")
    add_server_arguments(parser)
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.rounds = 50, 1
    return args


def configure(args: argparse.Namespace) -> None:
    """This process becomes a production-mode web process of the project, on a fresh database
    with the bare view's table (as bench/ingest.py serves it)."""
    import redis

    url = recreate_database(args.pg, DB_NAME)
    create_bare_table(url)
    redis.Redis.from_url(args.redis).flushdb()
    setup_django(project_env(url, args.redis))
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


def environ(path: str, body: bytes, headers: dict[str, str]) -> dict:
    env = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    for name, value in headers.items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def requests(kind: str, count: int, secret: str) -> list[dict]:
    from standardwebhooks.webhooks import Webhook

    from bench.ingest import BODY

    webhook, now, run = Webhook(secret), datetime.now(UTC), uuid.uuid4().hex[:8]
    made = []
    for n in range(count):
        body = BODY % n
        if kind == "bare":
            made.append(environ("/bench/bare/", body.encode(), {}))
            continue
        msg_id = f"msg_{run}_{n}"
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": webhook.sign(msg_id, now, body),
        }
        made.append(environ("/hooks/bench/", body.encode(), headers))
    return made


def serve(application, batch: list[dict]) -> tuple[float, float]:
    """CPU and wall milliseconds per request."""
    statuses: list[str] = []

    def start_response(status: str, headers: list, exc_info=None) -> None:
        statuses.append(status)

    cpu, wall = time.process_time(), time.perf_counter()
    for env in batch:
        response = application(env, start_response)
        b"".join(response)
        response.close()  # request_finished: what gunicorn does after writing the response
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    bad = [s for s in statuses if not s.startswith("202")]
    if bad:
        sys.exit(f"unexpected answers: {bad[:3]}")
    return cpu * 1000 / len(batch), wall * 1000 / len(batch)


class InlineBackend:
    """The publish as it was before events.publisher: in the request, one message per event."""

    def route(self, event_id: str) -> None:
        from events.tasks import route_event

        route_event.apply_async((event_id,), retry=False)


def variants() -> dict[str, Any]:
    """name -> (request kind, routing mode, event router or None for the default)."""
    return {
        "bare": ("bare", "publish", None),
        "publish inline": ("ingest", "publish", InlineBackend()),
        "publish": ("ingest", "publish", None),
        "outbox": ("ingest", "outbox", None),
    }


def serve_variant(application, variant: tuple, count: int, secret: str) -> tuple[float, float]:
    from django.conf import settings

    from events import publisher

    kind, mode, backend = variant
    settings.EVENTS_ROUTING = mode
    previous = publisher.set_router(backend.route) if backend is not None else None
    try:
        result = serve(application, requests(kind, count, secret))
        if kind == "ingest" and mode == "publish" and backend is None:
            publisher._publisher.flush(timeout=10)  # its thread's CPU counts for this variant
        return result
    finally:
        if previous is not None:
            publisher.set_router(previous)


def main() -> None:
    args = parse_args()
    configure(args)
    from django.core.wsgi import get_wsgi_application

    from events.webhooks import webhook_endpoint_create

    _, secret = webhook_endpoint_create(slug="bench", scheme="standard_webhooks")
    application = get_wsgi_application()
    chosen = {name: v for name, v in variants().items() if name in args.variants}
    try:
        for variant in chosen.values():  # warm-up
            serve_variant(application, variant, 200, secret)
        if args.profile:
            profile_variant(args, application, chosen, secret)
            return
        print(f"{args.requests} requests per variant and round: CPU ms (wall ms) per request")
        print(" ".join(f"{name:>16}" for name in chosen))
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in chosen}
        for _ in range(args.rounds):
            for name, variant in chosen.items():
                results[name].append(serve_variant(application, variant, args.requests, secret))
            print(" ".join(f"{cpu:>7.2f} ({wall:>5.2f})" for cpu, wall in
                           (results[name][-1] for name in chosen)))  # fmt: skip
        medians = {
            name: statistics.median(cpu for cpu, _ in runs) for name, runs in results.items()
        }
        print(" ".join(f"{medians[name]:>16.2f}" for name in chosen), "  (median CPU)")
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(args.pg, DB_NAME)


def profile_variant(args, application, chosen: dict, secret: str) -> None:
    """cProfile (CPU time) of the last chosen variant's requests."""
    variant = list(chosen.values())[-1]
    # CPU time, not wall time: waits on PostgreSQL and Redis do not count.
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    serve_variant(application, variant, args.requests, secret)
    profile.disable()
    for order, limit in (("cumulative", 60), ("tottime", 40)):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(order).print_stats(limit)
        print(out.getvalue())
    if args.callees:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_callees(*args.callees)
        print(out.getvalue())


if __name__ == "__main__":
    main()
