"""Outgoing HTTP that cannot be pointed at the inside of the network (SSRF).

Every hop (the first request and each redirect) resolves the host once, refuses it if any of
its addresses is loopback, private, link-local, multicast, reserved or unspecified (cloud
metadata at 169.254.169.254 included; IPv4-mapped IPv6 is judged as IPv4) unless the
AUTOMATION_HTTP_ALLOWLIST names the host or a network holding the address, and then connects
to that checked address (the pool key is the address, the Host header and TLS name stay the
host's), so a second DNS answer cannot swap it. Only http and https; redirects, time and the
response size are capped.

The technique is requests-hardened's (pin the checked address in the connection pool key);
that package checks only the first address and has no allow-list, hence this adapter.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
REDIRECTS = (301, 302, 303, 307, 308)


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


def _public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def resolve_checked(host: str, port: int, allowlist: Allowlist) -> str:
    """The address to connect to for ``host``; BlockedDestination if any answer is refused."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
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


class PinnedAddressAdapter(HTTPAdapter):
    def __init__(self, allowlist: Allowlist) -> None:
        super().__init__(max_retries=0)
        self.allowlist = allowlist

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        host, port = host_params["host"], host_params["port"]
        scheme = host_params["scheme"]
        address = resolve_checked(host, port or (443 if scheme == "https" else 80), self.allowlist)
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
    limit = max_bytes if max_bytes is not None else settings.AUTOMATION_HTTP_MAX_RESPONSE_BYTES
    with requests.Session() as session:
        session.trust_env = False  # no proxies or netrc from the environment
        if not trusted:
            session.mount("http://", PinnedAddressAdapter(allowlist))
            session.mount("https://", PinnedAddressAdapter(allowlist))
        for _hop in range(settings.AUTOMATION_HTTP_MAX_REDIRECTS + 1):
            _check_url(url)
            response = session.request(
                method, url, headers=headers, data=data, json=json, timeout=timeout,
                allow_redirects=False, stream=True,
            )  # fmt: skip
            if response.status_code not in REDIRECTS or "location" not in response.headers:
                return response, _read(response, limit)
            response.close()
            url = urljoin(url, response.headers["location"])
            if response.status_code == 303 or (
                response.status_code in (301, 302) and method.upper() == "POST"
            ):
                method, data, json = "GET", None, None
    raise requests.TooManyRedirects(f"more than {settings.AUTOMATION_HTTP_MAX_REDIRECTS} redirects")


def _read(response: requests.Response, limit: int) -> bytes:
    body = bytearray()
    try:
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if len(body) > limit:
                raise ResponseTooLarge(f"the response is larger than {limit} bytes")
    finally:
        response.close()
    return bytes(body)
