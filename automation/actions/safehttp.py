"""Outgoing HTTP that cannot be pointed at the inside of the network (SSRF).

Every hop (the first request and each redirect) resolves the host once, refuses it if any of
its addresses is loopback, private, link-local, multicast, reserved or unspecified (cloud
metadata at 169.254.169.254 included; IPv6 forms carrying an IPv4 address, mapped, NAT64,
6to4 or IPv4-compatible, are judged by that IPv4 address) unless the
AUTOMATION_HTTP_ALLOWLIST names the host or a network holding the address, and then connects
to that checked address (the pool key is the address, the Host header and TLS name stay the
host's), so a second DNS answer cannot swap it. Only http and https; redirects, time and the
response size are capped.

The technique is requests-hardened's (pin the checked address in the connection pool key);
that package checks only the first address and has no allow-list, hence this adapter.
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
REDIRECTS = (301, 302, 303, 307, 308)
# Headers whose values are credentials, in any case. ONE list for two jobs: they are sent to
# the origin the definition names, never on to another one a redirect points at, and the
# journal records their values as "[redacted]" (http.request's redact hook).
CREDENTIAL_HEADER_RE = re.compile(
    r"(proxy-)?authorization|authentication|(set-)?cookie|private-token"
    r"|x-[a-z0-9-]*(api-?key|token|secret|auth|password)[a-z0-9-]*|api-?key",
    re.IGNORECASE,
)
MAX_RETRY_AFTER = 86400.0  # a server cannot park a step for longer than a day


class BlockedDestination(requests.RequestException):
    """The URL points at an address the SSRF guard refuses (not retryable)."""


class ResponseTooLarge(requests.RequestException):
    pass


@dataclass(frozen=True)
class Allowlist:
    hosts: frozenset[str]
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, entries: list[str]) -> Allowlist:
        hosts, networks = set(), []
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: Address) -> bool:
        return host.lower().rstrip(".") in self.hosts or any(
            address in network for network in self.networks
        )


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: IPv4 in the last 32 bits
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches (mapped, NAT64, 6to4, IPv4-compatible)."""
    if address.ipv4_mapped is not None or address.sixtofour is not None:
        return address.ipv4_mapped or address.sixtofour
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local:
            return False
        address = _embedded_ipv4(address) or address
    return address.is_global and not address.is_multicast


def resolve_checked(
    host: str, port: int, allowlist: Allowlist, deadline: float | None = None
) -> str:
    """The address to connect to for ``host``; BlockedDestination if any answer is refused,
    requests.ConnectTimeout (retryable) if the lookup is not answered by ``deadline`` (a
    time.monotonic() value)."""
    try:
        answers = _lookup(host, port, deadline)
    except (socket.gaierror, UnicodeError) as exc:
        raise requests.ConnectionError(f"cannot resolve {host!r}: {exc}") from None
    addresses = [ipaddress.ip_address(answer[4][0].split("%")[0]) for answer in answers]
    for address in addresses:
        if not _public(address) and not allowlist.allows(host, address):
            raise BlockedDestination(
                f"{host} resolves to {address}, a private, loopback, link-local or reserved "
                "address; add it to AUTOMATION_HTTP_ALLOWLIST if this is intended"
            )
    first = addresses[0]
    return str(first) if first.version == 4 else f"[{first}]"


def _lookup(host: str, port: int, deadline: float | None) -> list[Any]:
    """getaddrinfo, given up at ``deadline``: the resolver has no timeout of its own, so it
    runs in a daemon thread that is left to finish (or hang) on its own after that."""
    if deadline is None:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    outcome: dict[str, Any] = {}

    def lookup() -> None:
        try:
            outcome["answers"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        raise requests.ConnectTimeout(f"resolving {host!r} took longer than the request's timeout")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["answers"]


class PinnedAddressAdapter(HTTPAdapter):
    def __init__(self, allowlist: Allowlist, deadline: float | None = None) -> None:
        super().__init__(max_retries=0)
        self.allowlist = allowlist
        self.deadline = deadline

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        host, port = host_params["host"], host_params["port"]
        scheme = host_params["scheme"]
        address = resolve_checked(
            host, port or (443 if scheme == "https" else 80), self.allowlist, self.deadline
        )
        request.headers = CaseInsensitiveDict(request.headers or {})
        shown_host = f"[{host}]" if ":" in host else host
        request.headers["Host"] = f"{shown_host}:{port}" if port else shown_host
        if scheme == "https":
            pool_kwargs["assert_hostname"] = host
            pool_kwargs["server_hostname"] = host
        host_params["host"] = address
        return host_params, pool_kwargs


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BlockedDestination(f"{parts.scheme or 'a missing'} scheme: only http and https")
    if not parts.hostname:
        raise BlockedDestination(f"{url!r} has no host")


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    data: bytes | str | None = None,
    json: Any = None,
    timeout: float = 10.0,
    max_bytes: int | None = None,
    allowlist: Allowlist | None = None,
    trusted: bool = False,
) -> tuple[requests.Response, bytes]:
    """Send the request through the guard (``trusted``: a URL from settings, not from a
    definition or an event, skips the address check). Returns the final response and its
    body, at most ``max_bytes``. Redirects are followed by hand so each hop is checked."""
    allowlist = allowlist or Allowlist.parse(settings.AUTOMATION_HTTP_ALLOWLIST)
    deadline = time.monotonic() + timeout  # requests' timeout is per read, not for the whole
    limit = max_bytes if max_bytes is not None else settings.AUTOMATION_HTTP_MAX_RESPONSE_BYTES
    with requests.Session() as session:
        session.trust_env = False  # no proxies or netrc from the environment
        if not trusted:
            session.mount("http://", PinnedAddressAdapter(allowlist, deadline))
            session.mount("https://", PinnedAddressAdapter(allowlist, deadline))
        for _hop in range(settings.AUTOMATION_HTTP_MAX_REDIRECTS + 1):
            _check_url(url)
            response = session.request(
                method, url, headers=headers, data=data, json=json, timeout=timeout,
                allow_redirects=False, stream=True,
            )  # fmt: skip
            if response.status_code not in REDIRECTS or "location" not in response.headers:
                return response, _read(response, limit, deadline, timeout)
            response.close()
            target = urljoin(url, response.headers["location"])
            if headers and session.should_strip_auth(url, target):
                headers = {k: v for k, v in headers.items() if not is_credential_header(k)}
            url = target
            if response.status_code == 303 or (
                response.status_code in (301, 302) and method.upper() == "POST"
            ):
                method, data, json = "GET", None, None
    raise requests.TooManyRedirects(f"more than {settings.AUTOMATION_HTTP_MAX_REDIRECTS} redirects")


def is_credential_header(name: str) -> bool:
    return bool(CREDENTIAL_HEADER_RE.fullmatch(name.strip()))


def retry_after(value: str | None) -> float | None:
    """The seconds of a Retry-After header (capped at MAX_RETRY_AFTER); None when it is absent
    or not a finite, non-negative number (the step's own backoff applies then)."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _read(response: requests.Response, limit: int, deadline: float, timeout: float) -> bytes:
    """The body, decoded, at most ``limit`` bytes, by ``deadline``. ``read1`` returns what has
    arrived, so a server trickling a byte per read timeout cannot hold the step forever."""
    body = bytearray()
    try:
        while chunk := response.raw.read1(64 * 1024, decode_content=True):
            body += chunk
            if len(body) > limit:
                raise ResponseTooLarge(f"the response is larger than {limit} bytes")
            if time.monotonic() > deadline:
                raise requests.Timeout(f"the response took longer than {timeout:g}s")
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.ReadTimeout(str(exc)) from None
    except urllib3.exceptions.HTTPError as exc:
        raise requests.ConnectionError(str(exc)) from None
    finally:
        response.close()
    return bytes(body)
