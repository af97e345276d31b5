#!/usr/bin/env python3
"""Webhook ingest throughput next to the bare stack, measured in the same run.

Two endpoints served by one gunicorn (2 sync workers) on PostgreSQL, loopback only:

- bare:   /bench/bare/  parse the JSON body, one INSERT, 202 (Django + PostgreSQL, nothing else)
- ingest: /hooks/bench/ Standard Webhooks verify + store the event + route, 202, in both routing
          modes: "publish" (the default: "route event X" goes to the Redis broker after commit)
          and "outbox" (nothing is published; `manage.py route_events` finds the event in the
          table). Neither runs workers or routers during the measurement: what is measured is
          the web tier's cost of handing the event on.

Load comes from wrk (Debian package `wrk`) with pre-signed requests, each with its own
webhook-id, so every ingest request stores a new event. Rounds alternate bare and ingest; the
medians are reported, then one ingest run at about half the measured rate for its latency.

    .venv/bin/python bench/ingest.py [--duration 8] [--rounds 3] [--connections 16]

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432; it creates and drops
the database automation_bench_ingest) and Redis (BENCH_REDIS_URL, default
redis://127.0.0.1:6379/13, emptied). Takes under two minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis
from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DB_NAME = "automation_bench_ingest"
BODY = (
    '{"type": "order.created", "timestamp": "2026-01-01T00:00:00Z", "data": {"order_id": %d, '
    '"customer": "c-42", "total": 129.5, "currency": "EUR", "items": [{"sku": "A-1", "qty": 2}]}}'
)


def main() -> None:
    args = parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    env = environment(args, workdir)
    recreate_database(args.pg)
    redis.Redis.from_url(args.redis).flushdb()
    manage(env, "migrate", "--noinput", "-v0")
    create_bare_table(env["DATABASE_URL"])
    secret = manage(env, "shell", "-c", CREATE_ENDPOINT).strip().splitlines()[-1]
    servers = {
        mode: start_gunicorn({**env, "EVENTS_ROUTING": mode}, workdir, mode)
        for mode in ("publish", "outbox")
    }
    try:
        ports = {mode: port for mode, (_, port) in servers.items()}
        results = measure(args, workdir, ports, secret)
        stored = count_events(env["DATABASE_URL"])
    finally:
        for process, _ in servers.values():
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        redis.Redis.from_url(args.redis).flushdb()
        drop_database(args.pg)
        shutil.rmtree(workdir, ignore_errors=True)
    report(args, results, stored)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=4, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=5, help="alternations, for stable medians")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CI check")
    parser.add_argument("--json", type=Path, help="also write the medians here (bench/compare.py)")
    add_server_arguments(parser)
    args = parser.parse_args()
    if args.smoke:
        args.duration, args.rounds = 1, 1
    return args


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """--pg and --redis, shared with bench/ingest_cpu.py."""
    parser.add_argument(
        "--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument(
        "--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    )


def environment(args: argparse.Namespace, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "REDIS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=f"{args.pg}/{DB_NAME}",
        DATABASE_CONN_MAX_AGE="600",  # persistent connections, as in production
        CELERY_BROKER_URL=args.redis,
        REDIS_URL=args.redis,  # the channel layer, as in production: every event notifies pages
        SECRET_KEY="bench-" + "x" * 60,
        HTTPS="false",
        DEBUG="false",
        LOG_LEVEL="warning",
        EXAMPLES="false",
        DATA_DIR=str(workdir / "data"),
    )
    return env


CREATE_ENDPOINT = (
    "from events.webhooks import webhook_endpoint_create as c; "
    "print(c(slug='bench', scheme='standard_webhooks')[1])"
)


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def recreate_database(server: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database(server: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def create_bare_table(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_bare (id bigserial PRIMARY KEY, body jsonb NOT NULL, "
            "received_at timestamptz NOT NULL DEFAULT now())"
        )


def count_events(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM events_event").fetchone()[0]


def start_gunicorn(env: dict[str, str], workdir: Path, name: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    log = (workdir / f"gunicorn-{name}.log").open("w")
    process = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "bench.wsgi:application", "--workers", "2",
         "--worker-class", "sync", "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            return process, port
        except urllib.error.HTTPError:
            return process, port  # answering (a 503 names a dependency; the runs will show it)
        except OSError:
            time.sleep(0.2)
    process.kill()
    sys.exit(f"gunicorn did not start:\n{(workdir / f'gunicorn-{name}.log').read_text()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_requests(path: Path, count: int, secret: str | None) -> None:
    webhook = Webhook(secret) if secret else None
    now = datetime.now(UTC)
    run = uuid.uuid4().hex[:8]
    with path.open("w") as out:
        for n in range(count):
            body = BODY % n
            if webhook is None:
                out.write(f"\t\t\t{body}\n")
                continue
            msg_id = f"msg_{run}_{n}"
            signature = webhook.sign(msg_id, now, body)
            out.write(f"{msg_id}\t{int(now.timestamp())}\t{signature}\t{body}\n")


def wrk(args: argparse.Namespace, port: int, path: str, requests: Path, seconds: int,
        delay_ms: float = 0.0) -> dict[str, float]:  # fmt: skip
    env = dict(os.environ, REQUESTS_FILE=str(requests), REQUEST_PATH=path, WRK_THREADS="1",
               DELAY_MS=str(delay_ms))  # fmt: skip
    result = subprocess.run(
        ["wrk", "-t1", f"-c{args.connections}", f"-d{seconds}s", "--timeout", "5s",
         "-s", str(ROOT / "bench" / "replay.lua"), f"http://127.0.0.1:{port}"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"RESULT (.*)", result.stdout)
    if match is None:
        sys.exit(f"wrk printed no result:\n{result.stdout}\n{result.stderr}")
    fields = dict(item.split("=") for item in match.group(1).split())
    values = {key: int(value) for key, value in fields.items()}
    return {
        "rps": values["requests"] / (values["duration_us"] / 1e6),
        "p50_ms": values["p50_us"] / 1000,
        "p99_ms": values["p99_us"] / 1000,
        "requests": values["requests"],
        "failed": values["errors"] + values["non2xx"],
    }


def measure(
    args: argparse.Namespace, workdir: Path, ports: dict[str, int], secret: str
) -> dict[str, list]:
    per_run = 6000 * args.duration  # more than a run can send: every webhook-id is new
    bare_file = workdir / "bare.tsv"
    write_requests(bare_file, per_run, None)
    files = iter([workdir / f"ingest-{n}.tsv" for n in range(2 * args.rounds + 4)])

    def ingest(mode: str, seconds: int, delay_ms: float = 0.0) -> dict[str, float]:
        requests = next(files)
        write_requests(requests, per_run, secret)
        return wrk(args, ports[mode], "/hooks/bench/", requests, seconds, delay_ms)

    # Warm-up: connections, code paths and caches of every endpoint.
    warm_up = min(2, args.duration)
    wrk(args, ports["publish"], "/bench/bare/", bare_file, warm_up)
    for mode in ports:
        ingest(mode, warm_up)
    results: dict[str, list] = {"bare": [], "ingest (publish)": [], "ingest (outbox)": []}
    for _ in range(args.rounds):
        results["bare"].append(
            wrk(args, ports["publish"], "/bench/bare/", bare_file, args.duration)
        )
        for mode in ports:
            results[f"ingest ({mode})"].append(ingest(mode, args.duration))
    for mode in ports:
        half_rate = statistics.median(r["rps"] for r in results[f"ingest ({mode})"]) / 2
        delay_ms = args.connections * 1000 / half_rate
        results[f"ingest ({mode}) at 1/2"] = [ingest(mode, args.duration, delay_ms)]
    return results


def report(args: argparse.Namespace, results: dict[str, list], stored: int) -> None:
    print(f"gunicorn 2 sync workers, PostgreSQL, wrk -c{args.connections}, "
          f"{args.rounds} x {args.duration}s per endpoint (median)")  # fmt: skip
    print(f"{'endpoint':<26} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}")
    medians = {}
    for name, runs in results.items():
        medians[name] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        row = medians[name]
        print(f"{name:<26} {row['rps']:>9.0f} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} "
              f"{sum(r['failed'] for r in runs):>7}")  # fmt: skip
    sent = sum(r["requests"] for name, runs in results.items() if name != "bare" for r in runs)
    print(f"events stored: {stored} (measured ingest requests: {sent}, plus the warm-up)")
    bare = medians["bare"]["rps"]
    publish = medians["ingest (publish)"]["rps"] / bare
    outbox = medians["ingest (outbox)"]["rps"] / bare
    print(f"ingest/bare throughput ratio: outbox {outbox:.2f}, publish {publish:.2f}")
    if args.json:
        figures = {
            f"{name} {key}": row[key]
            for name, row in medians.items()
            for key in ("rps", "p50_ms", "p99_ms")
        }
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
