"""http.request in definitions: credentials across redirects, Retry-After, SSRF through IPv6
forms of internal addresses, the time and size caps and proxy variables."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from automation import NonRetryableError
from automation.actions import safehttp
from automation.commands import workflow_definition_save
from automation.engine import registry
from automation.models import StepRecord
from tests.definitions.conftest import FakeServer
from tests.definitions.test_actions import CTX

pytestmark = pytest.mark.django_db


def save(name: str, steps: list[dict], **extra: Any) -> None:
    definition = {"name": name, "trigger": {"event": "test.go"}, "steps": steps, **extra}
    workflow_definition_save(definition=definition)


LOG = {"action": "log", "input": {"message": "hi"}}


# --- http.request ---------------------------------------------------------------------------


@pytest.fixture
def other_server():
    server = FakeServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


SECRET_HEADERS = {"Authorization": "Bearer s3cret", "Cookie": "session=s3cret"}


def test_credentials_are_not_sent_on_to_another_host_by_a_redirect(
    http_server, other_server, settings
):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]
    url = f"{http_server.url}/redirect?to={other_server.url}/landed"
    out = registry.get_action("http.request").invoke({"url": url, "headers": SECRET_HEADERS}, CTX)
    assert out["body"]["path"] == "/landed"
    assert http_server.last()["headers"]["Authorization"] == "Bearer s3cret"
    received = other_server.last()["headers"]
    assert "Authorization" not in received
    assert "Cookie" not in received


def test_credentials_follow_a_redirect_on_the_same_host(http_server, settings):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]
    url = f"{http_server.url}/redirect?to=/landed"
    registry.get_action("http.request").invoke({"url": url, "headers": SECRET_HEADERS}, CTX)
    assert http_server.last()["headers"]["Authorization"] == "Bearer s3cret"


@pytest.mark.parametrize("after", ["nan", "inf", "-5"])
def test_a_nonsense_retry_after_is_an_ordinary_retryable_429(
    workflow_harness, http_server, settings, after
):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]
    url = f"{http_server.url}/ratelimit?after={after}"
    save(
        "wf",
        [
            {
                "id": "call",
                "action": "http.request",
                "input": {"url": url},
                "retry": {"max_attempts": 2, "initial": "1s", "max": "1s"},
            }
        ],
    )
    run = workflow_harness.start("wf")
    record = StepRecord.objects.get(run=run, step_id="call")
    assert record.status == "waiting"
    assert 0 < (record.next_attempt_at - record.finished_at).total_seconds() <= 2
    workflow_harness.run_until_idle()
    run.refresh_from_db()
    assert run.status == "failed"
    assert "answered 429" in run.error["message"]
    assert len(http_server.requests) == 2


@pytest.mark.parametrize("after", ["99999999", "1e30"])
def test_a_long_retry_after_is_capped_at_a_day(workflow_harness, http_server, settings, after):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]
    save("wf", [{"id": "call", "action": "http.request",
                 "input": {"url": f"{http_server.url}/ratelimit?after={after}"}}])  # fmt: skip
    run = workflow_harness.start("wf")
    record = StepRecord.objects.get(run=run, step_id="call")
    assert record.status == "waiting"
    assert (record.next_attempt_at - record.finished_at).total_seconds() == 86400


# --- SSRF: IPv6 forms that carry an IPv4 address ----------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (reaches it where DNS64/NAT64 runs)
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "fec0::1",  # site-local
    ],
)
def test_ipv6_forms_of_internal_addresses_are_refused(address):
    with pytest.raises(safehttp.BlockedDestination):
        safehttp.resolve_checked(address, 80, safehttp.Allowlist.parse([]))


def test_nat64_of_a_public_address_is_allowed():
    assert safehttp.resolve_checked("64:ff9b::808:808", 80, safehttp.Allowlist.parse([])) == (
        "[64:ff9b::808:808]"
    )


# --- time cap -------------------------------------------------------------------------------


def test_a_body_trickled_within_each_read_timeout_still_times_out(http_server, settings):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]
    url = f"{http_server.url}/trickle?bytes=30&every=0.2"
    with pytest.raises(requests.Timeout, match="longer than 1s"):
        registry.get_action("http.request").invoke({"url": url, "timeout": 1}, CTX)


@pytest.mark.parametrize("path", ["gzip", "chunked"])
def test_the_size_cap_holds_for_compressed_and_chunked_bodies(http_server, settings, path):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]
    settings.AUTOMATION_HTTP_MAX_RESPONSE_BYTES = 1_000_000
    action = registry.get_action("http.request")
    assert len(action.invoke({"url": f"{http_server.url}/{path}?size=900000"}, CTX)["body"]) == (
        900_000
    )
    with pytest.raises(NonRetryableError, match="larger than 1000000 bytes"):
        action.invoke({"url": f"{http_server.url}/{path}?size=50000000"}, CTX)


def test_proxy_variables_of_the_environment_are_not_used(
    http_server, other_server, settings, monkeypatch
):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, other_server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    registry.get_action("http.request").invoke({"url": f"{http_server.url}/direct"}, CTX)
    assert http_server.last()["path"] == "/direct"
    assert other_server.requests == []
