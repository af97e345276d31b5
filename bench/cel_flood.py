"""Does a costly CEL filter stall the embedded server? /healthz latency while a 199 KB payload
is posted in a loop to an unsigned webhook whose workflow has the filter of issue 14, item 4.

    .venv/bin/python bench/cel_flood.py [--seconds 30] [--root DIR]

It starts ``manage.py serve`` (embedded mode: SQLite and the in-process worker, in a temporary
DATA_DIR) on a free 127.0.0.1 port, creates a ``none``-scheme endpoint and a workflow whose
trigger filter is ``trigger.data.a.exists(x, x == trigger.data.m)``, written straight into its
table (the current code refuses it at save; this is a row saved before that check), and posts
``{"a": [0..29999], "m": -1}`` (199 KB) back to back for ``--seconds`` (at most ``--posts``
posts; ``--posts 0`` measures an idle server) while another thread asks /healthz every 50 ms;
``--filter ''`` gives the workflow no filter (the cost of ingesting the payload alone).
``--root`` serves another checkout (an export of main, for the "before" figure). Prints
healthz p50/p99/max and how the events fared.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import free_port, percentile, table, wait_port

FILTER = "trigger.data.a.exists(x, x == trigger.data.m)"
SETUP = """
from automation.models import Workflow, WorkflowVersion
from events.webhooks import webhook_endpoint_create
webhook_endpoint_create(slug="flood", scheme="none", type_from="fixed", type_value="flood.posted")
definition = {"name": "flood", "trigger": {"event": "flood.posted", "filter": FILTER},
              "steps": [{"id": "hello", "action": "log", "input": {"message": "hi"}}]}
workflow = Workflow.objects.create(name="flood", kind="declarative")
WorkflowVersion.objects.create(workflow=workflow, number=1, checksum="flood",
    definition=definition, trigger_event="flood.posted", trigger_filter=FILTER)
"""
REPORT = """
import json
from events.models import Event
from automation.models import Run
events = Event.objects.filter(type="flood.posted")
recorded = hasattr(Event, "route_errors")  # main before this branch had no such field
errors = list(events.values_list("route_errors", flat=True)) if recorded else []
print(json.dumps({
    "events": events.count(),
    "routed": events.filter(routed_at__isnull=False).count(),
    "with_route_error": sum(1 for e in errors if e),
    "runs": Run.objects.count(),
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument(
        "--filter", default=FILTER, help="the trigger filter ('' for the ingest-only baseline)"
    )
    parser.add_argument("--smoke", action="store_true", help="3 seconds, 10 posts (for CI)")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.posts = 3.0, min(args.posts, 10)
    with tempfile.TemporaryDirectory(prefix="cel-flood-") as data_dir:
        env = _env(data_dir, args.root)
        _manage(env, args.root, "migrate", "--noinput")
        _manage(env, args.root, "shell", "-c", f"FILTER = {args.filter!r}\n{SETUP}")
        port = free_port()
        log = Path(data_dir) / "serve.log"
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=args.root,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_port(port)
            latencies, posts = _flood(port, args.seconds, args.posts)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        outcome = json.loads(_manage(env, args.root, "shell", "-c", REPORT).splitlines()[-1])
    _print(latencies, posts, outcome)


def _env(data_dir: str, root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "REDIS_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="automation.settings",
        DATA_DIR=data_dir,
        SECRET_KEY="bench-" + "k" * 60,
        HTTPS="false",
        DEBUG="false",
        EXAMPLES="false",
        LOG_LEVEL="error",
        PYTHONPATH=str(root),
        PYTHONUNBUFFERED="1",
    )
    return env


def _manage(env: dict[str, str], root: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        sys.exit(f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _flood(port: int, seconds: float, max_posts: int) -> tuple[list[float], dict[int, int]]:
    body = json.dumps({"a": list(range(30_000)), "m": -1}).encode()
    stop = threading.Event()
    latencies: list[float] = []
    posts: dict[int, int] = {}

    def probe() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            status = _request(port, "GET", "/healthz", b"", timeout=60)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                posts[-status] = posts.get(-status, 0) + 1  # a non-200 healthz, reported
            stop.wait(0.05)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    ends = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < ends and sent < max_posts:
        status = _request(port, "POST", "/hooks/flood/", body, timeout=60)
        posts[status] = posts.get(status, 0) + 1
        sent += 1
    # The last events are routed while healthz is still asked (--posts 0: an idle baseline).
    time.sleep(max(2.0, ends - time.monotonic()))
    stop.set()
    prober.join(timeout=70)
    return latencies, posts


def _request(port: int, method: str, path: str, body: bytes, *, timeout: float) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body else {}
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0  # a timeout or a refused connection
    finally:
        connection.close()


def _print(latencies: list[float], posts: dict[int, int], outcome: dict[str, int]) -> None:
    ms = [value * 1000 for value in latencies]
    rows = [
        [
            len(ms),
            f"{percentile(ms, 50):.1f}",
            f"{percentile(ms, 99):.1f}",
            f"{max(ms):.1f}",
            ", ".join(f"{k}: {v}" for k, v in sorted(posts.items())),
            outcome["events"],
            outcome["routed"],
            outcome["with_route_error"],
            outcome["runs"],
        ]
    ]
    headers = [
        "healthz n",
        "p50 ms",
        "p99 ms",
        "max ms",
        "posts by status",
        "events",
        "routed",
        "route errors",
        "runs",
    ]
    print(table(headers, rows))
    verdict = "under" if percentile(ms, 99) < 100 else "OVER"
    print(f"healthz p99 {percentile(ms, 99):.1f} ms while flooding: {verdict} the 100 ms bar")


if __name__ == "__main__":
    main()
