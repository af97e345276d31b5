"""Live updates across processes: a step finished by a Celery worker process reaches a socket
served by another process, through the Redis channel layer."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from tests.processes import ROOT, celery_worker, project_env, redis_layer

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


def _start_run(env: dict[str, str]) -> str:
    """Start a run from a separate process, as a web process would; its id."""
    start = (
        "from automation.engine.runs import run_start; "
        "print(run_start(workflow='example-payment', input={'orderId': 'o-1', 'amount': 5}).id)"
    )
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-v0", "-c", start],
        cwd=ROOT, env=env, check=True, timeout=60, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


async def test_a_worker_process_tells_the_run_page_of_every_step_in_order(redis_url, tmp_path):
    env = project_env(CELERY_BROKER_URL=redis_url, REDIS_URL=redis_url, EXAMPLES="true")
    run_id = await asyncio.to_thread(_start_run, env)  # queued: no worker runs yet
    layer = redis_layer(redis_url)
    run_page, runs_list = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(f"run.{run_id}", run_page)
    await layer.group_add("runs", runs_list)
    with celery_worker(env, tmp_path / "worker.log"):
        heard = []
        while not heard or (heard[-1]["kind"], heard[-1]["status"]) != ("run", "succeeded"):
            heard.append(await asyncio.wait_for(layer.receive(run_page), timeout=60))
        # A list group keeps one notice per kind and batch (live.LIST_GROUPS): the payment's
        # "succeeded" may give way to a notice of the shipping run its event started, sent in
        # the same batch. What a list page needs is a notice after the last change: the last
        # one it hears (once the worker has gone quiet) is of a run finishing.
        listed: list[dict] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                listed.append(await asyncio.wait_for(layer.receive(runs_list), timeout=2))
            except TimeoutError:
                if listed and listed[-1]["status"] == "succeeded":
                    break
    await layer.flush()
    assert listed, "the runs list heard nothing"
    assert (listed[-1]["kind"], listed[-1]["status"]) == ("run", "succeeded")
    changes = [(m["kind"], m.get("step_id"), m["status"]) for m in heard]
    # A quick step is announced once, when it is journaled with its outcome.
    assert changes == [
        ("run", None, "running"),
        ("step", "charge", "succeeded"),
        ("step", "emit:example.payment.captured#1", "succeeded"),
        ("run", None, "succeeded"),
    ]
    assert all(m["type"] == "live.notice" and m["run_id"] == run_id for m in heard)


async def test_a_burst_of_events_reaches_pages_without_flooding_redis(redis_url):
    # 300 events stored as fast as one process can: the page hears of the last one, and the
    # process's notices never exhaust its Redis connections (each failure would be logged).
    env = project_env(CELERY_BROKER_URL=redis_url, REDIS_URL=redis_url, EVENTS_ROUTING="outbox")
    layer = redis_layer(redis_url)
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


async def test_pages_hear_only_the_deployment_on_their_own_redis_database(redis_url):
    # Pub/sub channels belong to the whole Redis server: a deployment (or a test run) on another
    # database of the same server must not reach these pages.
    database = int(redis_url.rsplit("/", 1)[1])
    other_url = f"{redis_url.rsplit('/', 1)[0]}/{(database + 1) % 16}"
    ours, theirs = redis_layer(redis_url), redis_layer(other_url)
    our_page, their_page = await ours.new_channel(), await theirs.new_channel()
    await ours.group_add("events", our_page)
    await theirs.group_add("events", their_page)
    # Only a notice: nothing written to the other database (its cache or broker are not ours).
    send = (
        "from automation.live import notice, publish\n"
        "publish(['events'], notice('event', event_id='elsewhere'))"
    )
    await asyncio.to_thread(
        lambda: subprocess.run(
            [sys.executable, "manage.py", "shell", "-v0", "-c", send],
            cwd=ROOT, env=project_env(REDIS_URL=other_url), check=True, timeout=60,
        )
    )  # fmt: skip
    heard = await asyncio.wait_for(theirs.receive(their_page), timeout=10)
    assert heard["event_id"] == "elsewhere"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ours.receive(our_page), timeout=0.5)
    await ours.flush()
    await theirs.flush()
