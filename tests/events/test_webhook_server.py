"""Webhooks against real server processes: concurrent duplicates become one event, and a
database that is down gives 503 (never a 500, never a 202)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest

from events.models import Event
from events.webhooks import webhook_endpoint_create
from tests.events.servers import post, running_gunicorn
from tests.events.signing import body_of, standard_webhooks_headers
from tests.processes import free_port, project_env, running_server

CONCURRENT = 50


def _fire_duplicates(url: str, body: bytes, headers: dict[str, str]) -> list[tuple[int, dict]]:
    barrier = Barrier(CONCURRENT)

    def one(_: int) -> tuple[int, dict]:
        barrier.wait()  # all 50 leave together
        status, raw = post(url, body, headers)
        return status, json.loads(raw)

    with ThreadPoolExecutor(CONCURRENT) as pool:
        return list(pool.map(one, range(CONCURRENT)))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("server_kind", ["gunicorn", "serve"])
def test_fifty_concurrent_duplicates_are_one_event(tmp_path, server_kind):
    _, secret = webhook_endpoint_create(slug="shop", scheme="standard_webhooks")
    body = body_of({"type": "order.created", "data": {"id": 1}})
    headers = {
        "Content-Type": "application/json",
        **standard_webhooks_headers(secret, body, msg_id="msg_dup"),
    }
    env = project_env()
    log = tmp_path / "server.log"
    if server_kind == "gunicorn":
        context = running_gunicorn(env, log, workers=2, threads=16)
    else:
        context = running_server(env, log)
    with context as server:
        results = _fire_duplicates(f"{server.url}/hooks/shop/", body, headers)
    statuses = [status for status, _ in results]
    assert statuses == [202] * CONCURRENT, (statuses, server.output()[-3000:])
    assert len({reply["event_id"] for _, reply in results}) == 1
    assert sorted(reply["duplicate"] for _, reply in results) == [False] + [True] * 49
    assert Event.objects.filter(idempotency_key="msg_dup").count() == 1


def test_webhook_answers_503_while_the_database_is_down(tmp_path):
    closed = free_port()  # nothing listens there
    env = project_env(DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed}/automation")
    body = body_of({"type": "order.created", "data": {}})
    with running_gunicorn(env, tmp_path / "server.log", workers=1, threads=2) as server:
        status, raw = post(f"{server.url}/hooks/shop/", body, {"Content-Type": "application/json"})
    assert status == 503, raw
    error = json.loads(raw)["error"]
    assert error["code"] == "database_unavailable"
    assert "nothing was stored" in error["message"]
