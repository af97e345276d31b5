"""GET /healthz: 200 when every dependency answers, 503 naming the one that does not.

The failure cases start the real server with a dependency pointed at a closed port, so what is
tested is what a load balancer would see.
"""

from __future__ import annotations

import json

import pytest

from automation.services import heartbeat_record
from tests.processes import free_port, project_env, running_server

pytestmark = pytest.mark.django_db


def test_healthz_reports_each_dependency_in_embedded_mode(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "broker": "ok",
        "channel_layer": "ok",
        "background": "unknown",
    }
    assert body["checks"]["broker"]["kind"] == "embedded"
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_reports_when_background_work_last_ran(client):
    heartbeat_record()
    background = client.get("/healthz/").json()["checks"]["background"]
    assert background["status"] == "ok"
    assert background["age_seconds"] < 5


def test_healthz_only_answers_get(client):
    assert client.post("/healthz").status_code == 405


@pytest.mark.production
@pytest.mark.django_db(transaction=True)
def test_healthz_is_ok_in_production_mode_with_redis(redis_url, tmp_path):
    env = project_env(CELERY_BROKER_URL=redis_url, REDIS_URL=redis_url)
    with running_server(env, tmp_path / "server.log") as server:
        status, body = server.get("/healthz")
    checks = json.loads(body)["checks"]
    assert status == 200, body
    assert checks["broker"]["kind"] == "redis"
    assert checks["channel_layer"]["kind"] == "RedisPubSubChannelLayer"


@pytest.mark.production
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("failing", "overrides"),
    [
        ("broker", {"CELERY_BROKER_URL": "redis://127.0.0.1:{closed}/0"}),
        ("channel_layer", {"REDIS_URL": "redis://127.0.0.1:{closed}/0"}),
        ("database", {"DATABASE_URL": "postgres://postgres@127.0.0.1:{closed}/automation"}),
    ],
)
def test_healthz_answers_503_naming_the_dependency_that_is_down(
    redis_url, tmp_path, failing, overrides
):
    closed = free_port()  # nothing listens there
    env = project_env(CELERY_BROKER_URL=redis_url, REDIS_URL=redis_url)
    env.update({key: value.format(closed=closed) for key, value in overrides.items()})
    with running_server(env, tmp_path / "server.log") as server:
        status, raw = server.get("/healthz")
    body = json.loads(raw)
    assert status == 503, raw
    assert body["status"] == "fail"
    assert body["failing"] == [failing]
    assert body["checks"][failing]["error"]
    healthy = {"database", "broker", "channel_layer"} - {failing}
    assert all(body["checks"][name]["status"] == "ok" for name in healthy)
