"""Refuse request bodies over the limit in front of Django, without reading past it.

Django's ASGI handler reads the whole body (spooling it to a temporary file past 2.5 MB) before
any view runs, so a limit checked in a view comes after the disk and the time are spent. The
ASGI wrapper therefore counts the bytes as the server delivers them and answers 413 at the
first byte past the limit; it never trusts the headers to bound the body, since a server may
read a chunked body despite a small ``Content-Length`` (h11 takes both) and HTTP/2 has neither.
A declared length over the limit is only an earlier refusal. The WSGI wrapper refuses a
declared length over the limit in front of gunicorn, which hands Django the stream unread and
stops at ``Content-Length``.

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
    """ASGI middleware: 413 for a body over the URL's limit, declared or counted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit(scope["path"])
        if limit is None:
            return await self.app(scope, receive, send)
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        try:
            declared = _declared_length(headers.get(b"content-length", b"").decode() or None)
        except ValueError:
            return await _refuse(send, *_bad_length())
        if declared is not None and declared > limit:
            return await _refuse(send, *_too_large(limit))
        counted = _CountedBody(receive, send, limit)
        return await self.app(scope, counted.receive, counted.send)


class _CountedBody:
    """``receive`` and ``send`` for the app: past ``limit`` body bytes, answer 413, tell the app
    the client went away (Django then stops reading) and drop whatever it sends after."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive = receive
        self._send = send
        self.limit = limit
        self.size = 0
        self.refused = False
        self.started = False

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            if self.size > self.limit:
                self.refused = True
                if not self.started:  # else the answer is cut off: no second status line
                    await _refuse(self._send, *_too_large(self.limit))
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        self.started = True
        await self._send(message)


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
    # No "Connection: close" as the ASGI refusal has: WSGI leaves hop-by-hop headers to the
    # server (PEP 3333; wsgiref, under runserver, fails the response for one and gunicorn
    # drops it). gunicorn ends the connection itself after reading at most 64 KiB of a body
    # the app left unread (tests/security/test_body_limits.py shows it).
    reason = {400: "Bad Request", 413: "Content Too Large"}[status]
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
