"""Live updates across processes: a step finished by a Celery worker process reaches a socket
served by another process, through the Redis channel layer."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from channels_redis.core import RedisChannelLayer

from tests.processes import ROOT, celery_worker, project_env

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


async def _hear(layer: RedisChannelLayer, channel: str, until: str) -> list[dict]:
    heard: list[dict] = []
    while not heard or heard[-1].get("status") != until or heard[-1]["kind"] != "run":
        heard.append(await asyncio.wait_for(layer.receive(channel), timeout=60))
    return heard


async def test_a_worker_process_tells_web_sockets_of_every_step(redis_url, tmp_path):
    env = project_env(CELERY_BROKER_URL=redis_url, REDIS_URL=redis_url, EXAMPLES="true")
    layer = RedisChannelLayer(hosts=[redis_url])
    channel = await layer.new_channel()
    await layer.group_add("runs", channel)
    with celery_worker(env, tmp_path / "worker.log"):
        # A separate process starts the run, as a web process would.
        start = (
            "from automation.services import run_start; "
            "print(run_start(workflow='example-payment', input={'orderId': 'o-1', 'amount': 5}).id)"
        )
        run_id = await asyncio.to_thread(
            lambda: subprocess.run(
                [sys.executable, "manage.py", "shell", "-v0", "-c", start],
                cwd=ROOT,
                env=env,
                check=True,
                timeout=60,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        heard = await _hear(layer, channel, until="succeeded")
    await layer.group_discard("runs", channel)
    await layer.flush()
    statuses = [m["status"] for m in heard if m["run_id"] == run_id]
    assert statuses == ["pending", "running", "succeeded"]
    assert all(m["type"] == "live.notice" for m in heard)


async def test_a_burst_of_events_reaches_pages_without_flooding_redis(redis_url):
    # 300 events stored as fast as one process can: the page hears of the last one, and the
    # process's notices never exhaust its Redis connections (each failure would be logged).
    env = project_env(CELERY_BROKER_URL=redis_url, REDIS_URL=redis_url, EVENTS_ROUTING="outbox")
    layer = RedisChannelLayer(hosts=[redis_url])
    channel = await layer.new_channel()
    await layer.group_add("events", channel)
    burst = (
        "from events.services import emit\n"
        "for n in range(300): last = emit('burst.happened', {'n': n})\n"
        "print(last.id)"
    )
    heard: list[dict] = []

    async def listen() -> None:  # as an open page does, while the burst goes on
        while True:
            heard.append(await layer.receive(channel))

    listener = asyncio.create_task(listen())
    result = await asyncio.to_thread(
        lambda: subprocess.run(
            [sys.executable, "manage.py", "shell", "-v0", "-c", burst],
            cwd=ROOT, env=env, check=True, timeout=120, capture_output=True, text=True,
        )
    )  # fmt: skip
    last_id = result.stdout.strip()
    for _ in range(300):
        if heard and heard[-1]["event_id"] == last_id:
            break
        await asyncio.sleep(0.1)
    listener.cancel()
    assert heard[-1]["event_id"] == last_id
    await layer.group_discard("events", channel)
    await layer.flush()
    assert "could not notify" not in result.stderr
    assert all(m["kind"] == "event" for m in heard)
