"""GET /healthz: 200 when every dependency answers, 503 naming the one that does not.

The failure cases start the real server with a dependency pointed at a closed port, so what is
tested is what a load balancer would see.
"""

from __future__ import annotations

import http.client
import json

import pytest

from automation.health import heartbeat_record
from tests.processes import free_port, manage, project_env, running_server

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


def test_healthz_only_answers_get_and_head(client):
    assert client.post("/healthz").status_code == 405
    head = client.head("/healthz")
    assert head.status_code == 200
    assert head.content == b""


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


# --- /healthz under the ASGI server: answered in front of Django's handler (HealthzFirst) ----


def _embedded_env(data_dir, **overrides):
    return project_env(**{"DATA_DIR": str(data_dir), "DATABASE_URL": None, **overrides})


def _raw(server, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_the_embedded_server_answers_healthz_get_and_head_with_every_check(tmp_path):
    env = _embedded_env(tmp_path)
    manage(env, "migrate", "--noinput")
    with running_server(env, tmp_path / "server.log") as server:
        status, headers, raw = _raw(server, "GET", "/healthz/")
        head_status, head_headers, head_body = _raw(server, "HEAD", "/healthz")
        post_status, _, _ = _raw(server, "POST", "/healthz")
    body = json.loads(raw)
    assert status == 200, raw
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "broker": "ok",
        "channel_layer": "ok",
        "background": body["checks"]["background"]["status"],  # "ok" once beat has run
    }
    assert body["checks"]["database"]["vendor"] == "sqlite"
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"].startswith("max-age=0")
    assert (head_status, head_body) == (200, b"")
    assert head_headers["content-length"] == headers["content-length"]
    assert post_status == 403  # other methods go to Django (its CSRF check refuses this one)


@pytest.mark.django_db(transaction=True)
def test_the_embedded_server_reports_a_database_it_cannot_open_as_503(tmp_path):
    unreachable = tmp_path / "no-such-directory" / "db.sqlite3"
    env = _embedded_env(tmp_path, DATABASE_URL=f"sqlite:///{unreachable}")
    with running_server(env, tmp_path / "server.log") as server:
        status, _, raw = _raw(server, "GET", "/healthz")
    body = json.loads(raw)
    assert status == 503, raw
    assert body["failing"] == ["database"]
    assert "unable to open database file" in body["checks"]["database"]["error"]
    assert body["checks"]["broker"]["status"] == "ok"
    assert "background" not in body["checks"]  # it needs the database
