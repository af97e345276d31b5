"""SSRF: ``http.request`` (and the actions built on it) never reach the inside of the network
unless it is allow-listed: private, loopback, link-local and metadata addresses in every
spelling (IPv6, IPv4-mapped, decimal, octal, hex, short forms), names that resolve there, and
redirects that lead there, with and without AUTOMATION_HTTP_ALLOWLIST."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from automation import NonRetryableError
from tests.definitions.conftest import FakeServer
from tests.definitions.test_actions import call

REFUSED = "private, loopback, link-local or reserved"


@pytest.fixture
def http_server() -> Iterator[FakeServer]:
    server = FakeServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def allow_local(settings):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.1"]


SSRF_URLS = [
    "http://127.0.0.1:{port}/",
    "http://0.0.0.0:{port}/",
    "http://[::1]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://2130706433:{port}/",
    "http://10.1.2.3/",
    "http://169.254.169.254/latest/meta-data/",
    "http://localhost:{port}/",
    "http://192.168.0.1/",
    "http://[fd00::1]/",
    # Other spellings of loopback and metadata addresses that resolvers accept.
    "http://0177.0.0.1:{port}/",  # octal
    "http://0x7f000001:{port}/",  # hex
    "http://017700000001:{port}/",  # octal, one number
    "http://127.1:{port}/",  # short form
    "http://0:{port}/",
    "http://[::]:{port}/",
    "http://[0:0:0:0:0:0:0:1]:{port}/",
    "http://LOCALHOST:{port}/",  # a name that resolves to 127.0.0.1
    "http://[::ffff:a9fe:a9fe]/",  # 169.254.169.254, IPv4-mapped
    "http://[fe80::1]/",
    "http://100.64.0.1/",  # carrier-grade NAT
]


@pytest.mark.parametrize("url", SSRF_URLS)
def test_private_loopback_and_metadata_addresses_are_refused(http_server, url):
    with pytest.raises(NonRetryableError, match=REFUSED):
        call("http.request", {"url": url.format(port=http_server.port)})
    assert http_server.requests == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1:70/_x", "ftp://x/"])
def test_other_schemes_are_refused(url, allow_local):
    with pytest.raises(NonRetryableError, match="only http and https"):
        call("http.request", {"url": url})


@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.7/", "file:///etc/hosts"]
)
def test_a_redirect_to_a_private_address_is_refused(http_server, allow_local, target):
    with pytest.raises(NonRetryableError, match=r"private|only http"):
        call("http.request", {"url": f"{http_server.url}/redirect?to={target}"})
    assert [r["path"] for r in http_server.requests] == ["/redirect"]


def test_redirects_between_allowed_hosts_are_followed(http_server, allow_local):
    out = call("http.request", {"url": f"{http_server.url}/redirect?to=/landed"})
    assert out["body"]["path"] == "/landed"


def test_the_allowlist_takes_hosts_and_networks(http_server, settings):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["127.0.0.0/8"]
    assert call("http.request", {"url": f"http://localhost:{http_server.port}/"})["status"] == 200
    settings.AUTOMATION_HTTP_ALLOWLIST = ["localhost"]
    assert call("http.request", {"url": f"http://localhost:{http_server.port}/"})["status"] == 200
    with pytest.raises(NonRetryableError):
        call("http.request", {"url": f"http://127.0.0.1:{http_server.port}/"})


@pytest.mark.parametrize("url", SSRF_URLS)
def test_an_allowlist_naming_other_hosts_refuses_them_all_the_same(http_server, settings, url):
    settings.AUTOMATION_HTTP_ALLOWLIST = ["api.example.com", "203.0.113.0/24"]
    with pytest.raises(NonRetryableError, match=REFUSED):
        call("http.request", {"url": url.format(port=http_server.port)})
    assert http_server.requests == []


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.7/", "http://[::1]:{port}/"]
)
def test_allowing_loopback_does_not_allow_the_rest_of_the_inside(http_server, allow_local, url):
    with pytest.raises(NonRetryableError, match=REFUSED):
        call("http.request", {"url": url.format(port=http_server.port)})


def test_slack_post_goes_through_the_ssrf_guard(http_server):
    with pytest.raises(NonRetryableError, match="private"):
        call("slack.post", {"text": "x", "webhook_url": f"{http_server.url}/hooks/T1"})
