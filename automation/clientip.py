"""The address a request came from, trusting proxy headers only as far as configured.

``X-Forwarded-For`` is written by whoever sends the request: read blindly, every guess of a
password brute force can claim a new address. With ``TRUSTED_PROXY_COUNT`` = 0 (the default)
the address is the connection's peer (``REMOTE_ADDR``). Behind N proxies that each append the
address they received from, the client is the N-th address from the right of the header;
anything left of it was written by the client and is ignored.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

__all__ = ["client_address"]


def client_address(request: HttpRequest) -> str:
    peer = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_COUNT
    if not hops:
        return peer
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    forwarded = [address.strip() for address in header.split(",") if address.strip()]
    # Fewer addresses than proxies: the request did not come through all of them.
    return forwarded[-hops] if len(forwarded) >= hops else peer
