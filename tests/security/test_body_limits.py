"""Oversized bodies are refused before they are read, by the real servers, for every URL.

Against a real `manage.py serve` (uvicorn) and a real gunicorn, over raw sockets: the client
sends only the headers (or part of a chunked body) and the 413 must arrive anyway. Before, the
embedded server waited for all 50 MB of a declared ``Content-Length`` and spooled a chunked
upload to disk before answering.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

from events.models import Event
from events.webhooks import webhook_endpoint_create
from tests.events.servers import running_gunicorn
from tests.processes import Server, project_env, running_server

WEBHOOK_LIMIT = 64 * 1024
FIFTY_MB = 50 * 1024 * 1024
#: How long a client waits for the answer. Without the limit the server waits for the body,
#: which never comes, so the answer never comes either (the test fails on this timeout).
PATIENCE = 15


@contextmanager
def _server(kind: str, tmp_path) -> Iterator[Server]:
    env = project_env(WEBHOOK_MAX_BODY_BYTES=str(WEBHOOK_LIMIT))
    log = tmp_path / f"{kind}.log"
    context = running_gunicorn(env, log, workers=1, threads=4) if kind == "gunicorn" else None
    with context or running_server(env, log) as server:
        yield server


def _connect(server: Server) -> socket.socket:
    address = urlsplit(server.url)
    sock = socket.create_connection((address.hostname, address.port), timeout=PATIENCE)
    return sock


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(sock: socket.socket) -> tuple[int, dict]:
    """Read one response (status, JSON body); fails if none arrives within PATIENCE."""
    raw = b""
    try:
        while b"\r\n\r\n" not in raw:
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        length = _content_length(head)
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    except TimeoutError:
        pytest.fail(f"no answer within {PATIENCE}s: the server is waiting for the body")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body[:length]) if length else {}


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _declared_only(server: Server, path: str, length: int) -> tuple[int, dict]:
    """Send headers declaring ``length`` bytes and not one byte of the body."""
    with _connect(server) as sock:
        sock.sendall(_head(path, {"Content-Type": "application/json", "Content-Length": length}))
        return _answer(sock)


def _chunked_past(server: Server, path: str, size: int) -> tuple[int, dict]:
    """Send ``size`` bytes of a chunked body, never its final chunk."""
    head = _head(path, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    chunk = b"x" * 16384
    with _connect(server) as sock:
        sock.sendall(head)
        sent = 0
        try:
            while sent < size:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: the answer is still there to read
        return _answer(sock)


def _assert_too_large(answer: tuple[int, dict], limit: int) -> None:
    status, body = answer
    assert status == 413, body
    assert body["error"]["code"] == "body_too_large"
    assert str(limit) in body["error"]["message"]


@pytest.mark.django_db(transaction=True)
def test_the_embedded_server_refuses_oversized_bodies_before_reading_them(tmp_path, settings):
    webhook_endpoint_create(slug="lan", scheme="none")
    with _server("serve", tmp_path) as server:
        _assert_too_large(_declared_only(server, "/hooks/lan/", FIFTY_MB), WEBHOOK_LIMIT)
        _assert_too_large(_declared_only(server, "/api/events/", FIFTY_MB), WEBHOOK_LIMIT)
        other = settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # every other URL: Django's limit
        _assert_too_large(_declared_only(server, "/api/workflows/", 3 * 1024 * 1024), other)
        _assert_too_large(_declared_only(server, "/admin/login/", FIFTY_MB), other)
        # A chunked upload is cut off at the limit; the rest is never read (nor spooled).
        _assert_too_large(_chunked_past(server, "/hooks/lan/", 2 * WEBHOOK_LIMIT), WEBHOOK_LIMIT)
        _assert_too_large(_chunked_past(server, "/api/workflows/", 3 * 1024 * 1024), other)
        assert server.get("/healthz")[0] == 200
    assert Event.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_under_the_limit_is_still_accepted(tmp_path):
    webhook_endpoint_create(slug="lan", scheme="none")
    body = b'{"type": "order.created", "data": {"id": 7}}'
    head = _head(
        "/hooks/lan/", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    )
    with _server("serve", tmp_path) as server, _connect(server) as sock:
        sock.sendall(head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        status, answer = _answer(sock)
    assert status == 202, answer
    assert Event.objects.get().data["data"] == {"id": 7}


@pytest.mark.django_db(transaction=True)
def test_gunicorn_refuses_oversized_bodies_before_reading_them(tmp_path, settings):
    webhook_endpoint_create(slug="lan", scheme="none")
    with _server("gunicorn", tmp_path) as server:
        _assert_too_large(_declared_only(server, "/hooks/lan/", FIFTY_MB), WEBHOOK_LIMIT)
        _assert_too_large(_declared_only(server, "/hooks/unknown/", FIFTY_MB), WEBHOOK_LIMIT)
        other = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        _assert_too_large(_declared_only(server, "/api/workflows/", FIFTY_MB), other)
    assert Event.objects.count() == 0


def test_an_endpoint_cannot_accept_more_than_the_server_reads(db):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        webhook_endpoint_create(slug="big", scheme="none", max_body_bytes=10 * FIFTY_MB)
    assert "WEBHOOK_MAX_BODY_BYTES" in str(refused.value.message_dict["max_body_bytes"])


# --- the ASGI wrapper counts the bytes whatever the headers say -------------------------------


def _receiving(chunks: int, size: int = 16384):
    """An ASGI ``receive`` delivering ``chunks`` body chunks of ``size`` bytes; counts reads."""
    delivered = []

    async def receive():
        if len(delivered) == chunks:
            return {"type": "http.disconnect"}
        delivered.append(size)
        return {"type": "http.request", "body": b"x" * size, "more_body": len(delivered) < chunks}

    return receive, delivered


async def _reads_the_whole_body(scope, receive, send):
    """Like Django's handler: read every body message, then answer 200."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _call_wrapper(headers: dict[bytes, bytes], chunks: int) -> tuple[list[dict], list[int]]:
    from asgiref.sync import async_to_sync

    from automation.lib.bodylimit import ASGIBodyLimit

    scope = {"type": "http", "path": "/hooks/lan/", "headers": list(headers.items())}
    receive, delivered = _receiving(chunks)
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async_to_sync(ASGIBodyLimit(_reads_the_whole_body))(scope, receive, send)
    return sent, delivered


SMUGGLED_HEADERS = {
    "a small Content-Length and chunked": {
        b"content-length": b"3",
        b"transfer-encoding": b"chunked",
    },
    "a small Content-Length alone": {b"content-length": b"3"},
    "neither header (HTTP/2)": {},
}


@pytest.mark.parametrize("headers", SMUGGLED_HEADERS.values(), ids=SMUGGLED_HEADERS.keys())
def test_the_asgi_limit_counts_the_bytes_whatever_the_headers_say(settings, headers):
    settings.WEBHOOK_MAX_BODY_BYTES = WEBHOOK_LIMIT
    sent, delivered = _call_wrapper(headers, chunks=64)  # 1 MiB against a 64 KiB limit
    starts = [message for message in sent if message["type"] == "http.response.start"]
    assert [start["status"] for start in starts] == [413]
    assert (b"connection", b"close") in starts[0]["headers"]
    body = json.loads(b"".join(m.get("body", b"") for m in sent if "body" in m))
    assert body["error"]["code"] == "body_too_large"
    assert sum(delivered) <= WEBHOOK_LIMIT + 16384  # reading stopped at the first chunk past it


def test_the_asgi_limit_passes_a_body_under_it_through(settings):
    settings.WEBHOOK_MAX_BODY_BYTES = WEBHOOK_LIMIT
    headers = {b"content-length": b"3", b"transfer-encoding": b"chunked"}
    sent, delivered = _call_wrapper(headers, chunks=2)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200]
    assert sum(delivered) == 2 * 16384


# --- WSGI: the connection is closed after a 413 ----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_gunicorn_closes_the_connection_after_a_413(tmp_path):
    """A client that keeps sending the refused body finds the connection closed, instead of
    gunicorn reading (and discarding) all 50 MB it declared to keep the connection alive."""
    webhook_endpoint_create(slug="lan", scheme="none")
    with _server("gunicorn", tmp_path) as server, _connect(server) as sock:
        head = {"Content-Type": "application/json", "Content-Length": FIFTY_MB}
        sock.sendall(_head("/hooks/lan/", head))
        assert _answer(sock)[0] == 413
        sent = 0
        try:
            while sent < FIFTY_MB:
                sent += sock.send(b"x" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < FIFTY_MB, "gunicorn read the whole refused body"
