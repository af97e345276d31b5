"""Refuse request bodies over the limit before reading them, in front of Django.

Django's ASGI handler reads the whole body (spooling it to a temporary file past 2.5 MB) before
any view runs, so under uvicorn (`manage.py serve`) a 50 MB ``Content-Length`` was waited for to
the last byte, and a 300 MiB chunked upload filled the disk, before the view answered 413. These
wrappers answer 413 as soon as the headers show a body over the limit, and stop reading a
chunked body at the first byte past it. The WSGI one does the same in front of gunicorn (which
hands the view the stream unread, so there the view's own check was already immediate).

The limit depends on the URL: bodies that become events (``/hooks/``, ``/api/events/``) get
WEBHOOK_MAX_BODY_BYTES, everything else DATA_UPLOAD_MAX_MEMORY_SIZE (Django's, 2.5 MB).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from django.conf import settings

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

EVENT_PATHS = ("/hooks/", "/api/events/")


def body_limit(path: str) -> int | None:
    """The largest body accepted at ``path``, in bytes (None: no limit)."""
    if path.startswith(EVENT_PATHS):
        return settings.WEBHOOK_MAX_BODY_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _too_large(limit: int) -> tuple[int, bytes]:
    message = (
        f"The body is larger than this URL's limit of {limit} bytes; nothing was read or stored."
    )
    return 413, _error("body_too_large", message)


def _bad_length() -> tuple[int, bytes]:
    return 400, _error("bad_content_length", "Content-Length is not a number of bytes.")


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def _declared_length(value: str | None) -> int | None:
    """The Content-Length as a number; ValueError when present but not a number."""
    if value is None:
        return None
    length = int(value.strip())  # ValueError for "abc"
    if length < 0:
        raise ValueError(value)
    return length


# --- ASGI (uvicorn) ---------------------------------------------------------------------------


class ASGIBodyLimit:
    """ASGI middleware: 413 before reading a body over the URL's limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit(scope["path"])
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        if limit is None:
            return await self.app(scope, receive, send)
        try:
            declared = _declared_length(headers.get(b"content-length", b"").decode() or None)
        except ValueError:
            return await _refuse(send, *_bad_length())
        if declared is not None:
            if declared > limit:
                return await _refuse(send, *_too_large(limit))
            return await self.app(scope, receive, send)  # the server reads at most that much
        if b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
            return await self.app(scope, receive, send)
        return await self._chunked(scope, receive, send, limit)

    async def _chunked(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Read a chunked body up to the limit; past it, answer 413 and read no more."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            size += len(message.get("body", b""))
            if size > limit:
                return await _refuse(send, *_too_large(limit))
            messages.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)


async def _refuse(send: Send, status: int, body: bytes) -> None:
    # Connection: close, as the rest of the body is never read (uvicorn then closes).
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


# --- WSGI (gunicorn) --------------------------------------------------------------------------

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WSGIBodyLimit:
    """WSGI middleware: 413 for a declared Content-Length over the URL's limit. (Django reads
    no more than Content-Length, so a chunked body without one reaches views as empty.)"""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        limit = body_limit(environ.get("PATH_INFO", ""))
        try:
            declared = _declared_length(environ.get("CONTENT_LENGTH") or None)
        except ValueError:
            return _wsgi_refuse(start_response, *_bad_length())
        if limit is not None and declared is not None and declared > limit:
            return _wsgi_refuse(start_response, *_too_large(limit))
        return self.app(environ, start_response)


def _wsgi_refuse(start_response: Callable[..., Any], status: int, body: bytes) -> list[bytes]:
    reason = {400: "Bad Request", 413: "Content Too Large"}[status]
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
