#!/usr/bin/env python3
"""Live: from a step finishing in a worker to the notice arriving on an open WebSocket, p50/p99,
next to the bare Channels path (a group_send straight to the same sockets) in the same run.

Production topology: uvicorn (automation.asgi) with the Redis channel layer, two Celery workers
and beat, PostgreSQL. --runs runs of a workflow that sleeps a few seconds, then runs one step;
a signed-in browser's WebSocket is open on each run's page (/ws/runs/<id>/) before the step
runs. Latency = arrival on the socket - the step's recorded finish. The bare measurement sends
a notice with its send time to the same groups from this process.

    .venv/bin/python bench/live.py [--runs 200]
    .venv/bin/python bench/live.py --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PG,
    PYTHON,
    REDIS_HOST,
    free_port,
    manage,
    percentile,
    project_env,
    recreate_database,
    setup_django,
    spawn,
    start_beat,
    start_worker,
    stop,
    table,
    wait_port,
    workdir,
)

DB_NAME = "automation_bench_live"
REDIS_URL = f"{REDIS_HOST}/14"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CI check")
    args = parser.parse_args()
    if args.smoke:
        args.runs = 10

    env = project_env(recreate_database(PG, DB_NAME), REDIS_URL)
    manage(env, "migrate", "--noinput", "-v0")
    setup_django(env)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    with workdir("bench-live-") as tmp:
        log = tmp / "processes.log"
        port = free_port()
        server = spawn(
            [PYTHON, "-m", "uvicorn", "automation.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning", "--no-access-log"],
            env, log,
        )  # fmt: skip
        workers = [start_worker(env, log, name=f"live{n}") for n in range(2)]
        beat = start_beat(env, log, tmp)
        try:
            wait_port(port)
            cookie = session_cookie()
            run_ids = start_sleeping_runs(args.runs, lead=4.0 + args.runs / 50)
            engine, bare = asyncio.run(listen(port, cookie, run_ids))
        except BaseException:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            for process in [server, *workers, beat]:
                stop(process)
    report(args, engine, bare)


def session_cookie() -> str:
    from django.contrib.auth import get_user_model
    from django.test import Client

    admin = get_user_model().objects.create_superuser("bench", "bench@example.com", "x" * 20)
    client = Client()
    client.force_login(admin)
    return client.cookies["sessionid"].value


def start_sleeping_runs(count: int, lead: float) -> list[str]:
    import bench.bench_app  # noqa: F401
    from automation.engine import clock, registry
    from automation.engine.runs import run_start

    registry.sync_code_workflows(force=True)
    until = clock.now() + timedelta(seconds=lead)
    return [
        str(run_start(workflow="bench-sleep", input={"until": until.isoformat()}).id)
        for _ in range(count)
    ]


async def listen(port: int, cookie: str, run_ids: list[str]) -> tuple[list[float], list[float]]:
    import websockets
    from asgiref.sync import sync_to_async

    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    sockets = {}
    for run_id in run_ids:
        sockets[run_id] = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws/runs/{run_id}/", additional_headers=headers
        )
    arrivals: dict[str, float] = {}
    bare: list[float] = []

    async def read(run_id: str, socket) -> None:
        async for raw in socket:
            message = json.loads(raw)
            if message.get("kind") == "bench":
                bare.append(1000 * (time.time() - message["sent"]))
            elif message.get("step_id") == "woke" and message.get("status") == "succeeded":
                arrivals[run_id] = time.time()

    readers = [asyncio.create_task(read(run_id, s)) for run_id, s in sockets.items()]
    deadline = time.monotonic() + 120
    while len(arrivals) < len(run_ids) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    if len(arrivals) < len(run_ids):
        raise SystemExit(f"only {len(arrivals)} of {len(run_ids)} step notices arrived")
    await sync_to_async(bare_notices)(run_ids)
    deadline = time.monotonic() + 30
    while len(bare) < len(run_ids) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for socket in sockets.values():
        await socket.close()
    for reader in readers:
        reader.cancel()
    finished = await sync_to_async(step_finishes)()
    engine = [1000 * (arrivals[run_id] - finished[run_id]) for run_id in run_ids]
    return engine, bare


def bare_notices(run_ids: list[str]) -> None:
    """The bare Channels path: group_send from this process to each run's sockets, paced."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    for run_id in run_ids:
        async_to_sync(layer.group_send)(
            f"run.{run_id}", {"type": "live.notice", "kind": "bench", "sent": time.time()}
        )
        time.sleep(0.01)


def step_finishes() -> dict[str, float]:
    from automation.models import StepRecord

    return {
        str(run_id): finished.timestamp()
        for run_id, finished in StepRecord.objects.filter(step_id="woke").values_list(
            "run_id", "finished_at"
        )
    }


def report(args, engine: list[float], bare: list[float]) -> None:
    print(f"{args.runs} open run pages (WebSockets on uvicorn, Redis pub/sub layer), 2 workers")
    rows = [
        ("bare: group_send -> socket", len(bare), percentile(bare, 50), percentile(bare, 99)),
        (
            "engine: step finished -> socket",
            len(engine),
            percentile(engine, 50),
            percentile(engine, 99),
        ),
    ]
    print(table(["measurement", "n", "p50 ms", "p99 ms"], rows))
    print(
        f"step finished -> browser p99 {percentile(engine, 99):.1f} ms (bar 100 ms); "
        f"bare Channels p99 {percentile(bare, 99):.1f} ms"
    )


if __name__ == "__main__":
    main()
