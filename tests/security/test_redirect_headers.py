"""Credentials are sent to the host a definition names, never on to another origin a redirect
points at: every header the journal hides as a credential is dropped (one list for both)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from automation.actions import http as http_action
from automation.actions import safehttp
from automation.engine import registry
from tests.definitions.conftest import FakeServer

CTX = SimpleNamespace(
    run_id="run-1",
    correlation_id="",
    current_step_id="step",
    idempotency_key=lambda step_id: f"run-1:{step_id}",
)
CREDENTIALS = {
    "Authorization": "Bearer a",
    "Proxy-Authorization": "Basic b",
    "Cookie": "session=c",
    "X-Api-Key": "d",
    "X-Auth-Token": "e",
    "Api-Key": "f",
    "X-Goog-Api-Key": "g",
    "Private-Token": "h",
    "x-client-secret": "i",
}


@pytest.fixture
def servers(settings) -> Iterator[tuple[FakeServer, FakeServer]]:
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]
    pair = (FakeServer(), FakeServer())
    for server in pair:
        server.thread.start()
    yield pair
    for server in pair:
        server.httpd.shutdown()
        server.httpd.server_close()


def request(url: str) -> dict:
    headers = {**CREDENTIALS, "Accept": "application/json"}
    return registry.get_action("http.request").invoke({"url": url, "headers": headers}, CTX)


def test_no_credential_header_follows_a_redirect_to_another_origin(servers):
    first, second = servers
    out = request(f"{first.url}/redirect?to={second.url}/landed")
    assert out["body"]["path"] == "/landed"
    sent = {key.lower() for key in second.last()["headers"]}
    assert sent.isdisjoint(key.lower() for key in CREDENTIALS), sent
    assert second.last()["headers"]["Accept"] == "application/json"
    assert first.last()["headers"]["X-Api-Key"] == "d"  # the named host got them


def test_credentials_stay_on_a_redirect_within_the_same_origin(servers):
    first, _ = servers
    request(f"{first.url}/redirect?to=/landed")
    assert first.last()["path"] == "/landed"
    assert first.last()["headers"]["X-Auth-Token"] == "e"


@pytest.mark.parametrize("name", [*CREDENTIALS, "set-cookie", "X-Webhook-Secret"])
def test_what_the_journal_hides_is_what_a_redirect_drops(name):
    assert safehttp.is_credential_header(name)
    shown = http_action.redact_input({"url": "https://x.test/", "headers": {name: "v"}})
    assert shown["headers"][name] == "[redacted]"


@pytest.mark.parametrize("name", ["Accept", "Content-Type", "User-Agent", "X-Request-Id"])
def test_ordinary_headers_are_neither_hidden_nor_dropped(name):
    assert not safehttp.is_credential_header(name)
