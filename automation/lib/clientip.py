"""The address a request came from, trusting proxy headers only as far as configured.

``X-Forwarded-For`` is written by whoever sends the request: read blindly, every guess of a
password brute force can claim a new address. With ``TRUSTED_PROXY_COUNT`` = 0 (the default)
the address is the connection's peer (``REMOTE_ADDR``). Behind N proxies that each append the
address they received from, the client is the N-th address from the right of the header;
anything left of it was written by the client and is ignored. An entry that is not a plain
IP address (``1.2.3.4:5678``, a name, an IPv6 zone) is ignored too: the sign-in counts store
the address in an IP column, which PostgreSQL would refuse.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.core import checks
from django.http import HttpRequest

__all__ = ["check_proxy_count", "client_address"]


def client_address(request: HttpRequest) -> str:
    peer = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_COUNT
    if not hops:
        return peer
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    forwarded = [address.strip() for address in header.split(",") if address.strip()]
    # Fewer addresses than proxies: the request did not come through all of them.
    chosen = forwarded[-hops] if len(forwarded) >= hops else peer
    return chosen if _is_ip(chosen) else peer


def _is_ip(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return getattr(address, "scope_id", None) is None


@checks.register(checks.Tags.security, deploy=True)
def check_proxy_count(**_: Any) -> list[checks.CheckMessage]:
    """SECURE_PROXY_SSL_HEADER says a proxy terminates HTTPS; then the connection's address is
    the proxy's, and with TRUSTED_PROXY_COUNT = 0 every client shares its sign-in and rate
    limits (one guesser locks everyone out)."""
    if settings.SECURE_PROXY_SSL_HEADER and not settings.TRUSTED_PROXY_COUNT:
        return [
            checks.Warning(
                "SECURE_PROXY_SSL_HEADER is set but TRUSTED_PROXY_COUNT is 0: every client "
                "appears with the proxy's address, so sign-in lockouts and rate limits are "
                "shared by all of them.",
                hint="Set TRUSTED_PROXY_COUNT to the number of proxies that append to "
                "X-Forwarded-For (usually 1).",
                id="automation.W010",
            )
        ]
    return []
