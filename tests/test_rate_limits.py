"""Rate limits per API token and per webhook endpoint: 429 with Retry-After, counted across
processes (gunicorn workers sharing Redis)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from rest_framework.authtoken.models import Token

from automation.lib.env import parse_rate
from events.models import Event
from events.webhooks import webhook_endpoint_create
from tests.events.servers import post, running_gunicorn
from tests.processes import project_env

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_counters():
    caches["ratelimit"].clear()
    yield
    caches["ratelimit"].clear()


def _hook(client, slug):
    return client.post(f"/hooks/{slug}/", b'{"type": "a.b"}', content_type="application/json")


@pytest.mark.parametrize(
    ("text", "rate"),
    [("100/m", (100, 60)), ("5000/hour", (5000, 3600)), ("10/5m", (10, 300)), ("off", None)],
)
def test_rates_are_read_from_text(text, rate):
    assert parse_rate("API_RATE_LIMIT", text) == rate


@pytest.mark.parametrize("text", ["100", "ten/m", "5/fortnight", "0/s"])
def test_an_unusable_rate_stops_the_process_naming_the_variable(text):
    with pytest.raises(ImproperlyConfigured, match="API_RATE_LIMIT"):
        parse_rate("API_RATE_LIMIT", text)


def test_each_api_token_has_its_own_allowance(client, users, settings):
    settings.API_RATE_LIMIT = (3, 3600)
    olivia = Token.objects.create(user=users["operator"]).key
    oscar = Token.objects.create(user=users["outsider"]).key
    answers = [
        client.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Token {olivia}").status_code
        for _ in range(4)
    ]
    assert answers == [200, 200, 200, 429]
    refused = client.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Token {olivia}")
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert client.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Token {oscar}").status_code == 200


def test_session_users_are_limited_too(client, users, settings):
    settings.API_RATE_LIMIT = (1, 3600)
    client.force_login(users["operator"])
    assert client.get("/api/auth/me/").status_code == 200
    assert client.get("/api/auth/me/").status_code == 429


def test_password_guessing_for_a_token_is_limited_per_address(client, users, settings):
    settings.API_RATE_LIMIT = (2, 3600)
    guesses = [
        client.post(
            "/api/auth/token/", {"username": "olivia", "password": f"guess-{n}"}
        ).status_code
        for n in range(3)
    ]
    assert guesses == [400, 400, 429]


def test_each_webhook_endpoint_has_its_own_allowance(client, settings):
    settings.WEBHOOK_RATE_LIMIT = (2, 3600)
    settings.WEBHOOK_RATE_LIMITS = {"github": None}
    for slug in ("shop", "crm", "github"):
        webhook_endpoint_create(slug=slug, scheme="none")
    assert [_hook(client, "shop").status_code for _ in range(3)] == [202, 202, 429]
    refused = _hook(client, "shop")
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused["Retry-After"]) >= 1
    assert _hook(client, "crm").status_code == 202  # another endpoint: its own allowance
    assert [_hook(client, "github").status_code for _ in range(3)] == [202] * 3  # "off"
    assert Event.objects.filter(source="webhook:shop").count() == 2


def deliver(url: str) -> tuple[int, bytes]:
    return post(f"{url}/hooks/limited/", b'{"type": "a.b"}', {"Content-Type": "application/json"})


@pytest.mark.django_db(transaction=True)
def test_the_limit_is_shared_by_every_server_process(tmp_path, redis_url):
    webhook_endpoint_create(slug="limited", scheme="none")
    env = project_env(REDIS_URL=redis_url, WEBHOOK_RATE_LIMIT="5/d")
    with running_gunicorn(env, tmp_path / "server.log", workers=3, threads=1) as server:
        # Concurrent, so the three single-threaded workers each take some of them.
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: deliver(server.url), range(12)))
        codes = {json.loads(body).get("error", {}).get("code") for _, body in answers}
    statuses = sorted(status for status, _ in answers)
    assert statuses == [202] * 5 + [429] * 7, (answers, server.output()[-2000:])
    assert codes == {None, "rate_limited"}
    assert Event.objects.count() == 5
