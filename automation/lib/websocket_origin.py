"""The Origin check of the UI's WebSockets: the same rule Django's CSRF check applies to a POST.

A browser sends its page's origin (scheme, host and port) with every WebSocket handshake, and
sends the site's cookies whatever page opened the socket. So a socket is only for pages of this
site: its origin must be the socket's own (``ws`` is ``http``, ``wss`` is ``https``, behind a
TLS proxy as ``SECURE_PROXY_SSL_HEADER`` says; the ``Host`` header must be in ``ALLOWED_HOSTS``)
or be listed in ``CSRF_TRUSTED_ORIGINS``. Channels' ``AllowedHostsOriginValidator`` compares the
host name only, so a page on any other port of an allowed host could listen in.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import is_same_domain, split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalized_origin(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin or ``Host``-based URL, None when it is not one."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a port out of range or not a number
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or port is None:
        return None
    return parts.scheme, parts.hostname, port


def _allowed_hosts() -> list[str]:
    # Django's own default when DEBUG is on and ALLOWED_HOSTS is empty (HttpRequest.get_host).
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [".localhost", "127.0.0.1", "[::1]"]
    return list(settings.ALLOWED_HOSTS)


def _headers(scope: dict[str, Any]) -> dict[bytes, str]:
    return {name.lower(): value.decode("latin1") for name, value in scope.get("headers", [])}


def _own_scheme(scope: dict[str, Any], headers: dict[bytes, str]) -> str:
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        name, secure_value = proxy
        header = name.removeprefix("HTTP_").replace("_", "-").lower().encode()
        if headers.get(header, "").split(",")[0].strip() == secure_value:
            return "https"
    return "https" if scope.get("scheme") in ("wss", "https") else "http"


def _own_origin(scope: dict[str, Any], headers: dict[bytes, str]) -> tuple[str, str, int] | None:
    host = headers.get(b"host", "")
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    return normalized_origin(f"{_own_scheme(scope, headers)}://{host}")


def _trusted(origin: tuple[str, str, int]) -> bool:
    """In CSRF_TRUSTED_ORIGINS, with Django's ``https://*.example.com`` wildcards."""
    scheme, host, port = origin
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        wildcard = "://*." in entry
        trusted = normalized_origin(entry.replace("://*.", "://", 1))
        if trusted is None or trusted[0] != scheme or trusted[2] != port:
            continue
        if trusted[1] == host or (wildcard and is_same_domain(host, f".{trusted[1]}")):
            return True
    return False


def origin_allowed(scope: dict[str, Any]) -> bool:
    headers = _headers(scope)
    origin = normalized_origin(headers.get(b"origin", ""))
    if origin is None:  # no Origin (not a browser page) or "null" (a sandboxed or file page)
        return False
    return origin == _own_origin(scope, headers) or _trusted(origin)


class SameOriginValidator:
    """ASGI middleware: a WebSocket whose origin is not this site's is refused at the handshake
    (HTTP 403), before any session or route is looked at."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
