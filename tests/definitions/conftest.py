"""A real HTTP server on 127.0.0.1 for the actions' tests: it records what it received and
answers by path (JSON, raw text labelled JSON, a status, a redirect, a large or slow body, a
fake chat-completions API)."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (the timeout test) is expected, not a failure


class FakeServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.ai_answer: str = json.dumps({"sentiment": "positive", "score": 0.9})
        self.httpd = QuietServer(("127.0.0.1", 0), _handler(self))
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def last(self) -> dict[str, Any]:
        return self.requests[-1]


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        def _handle(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length).decode() if length else ""
            server.requests.append(
                {
                    "method": self.command,
                    "path": url.path,
                    "headers": dict(self.headers),
                    "body": body,
                }
            )
            if url.path.startswith("/status/"):
                self._answer(int(url.path.rsplit("/", 1)[1]), {"error": "as asked"})
            elif url.path == "/ratelimit":
                self._answer(429, {"error": "slow down"}, {"Retry-After": query["after"]})
            elif url.path == "/trickle":  # a body sent a byte at a time, each within the timeout
                count = int(query.get("bytes", 20))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(count))
                self.end_headers()
                for _ in range(count):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(float(query.get("every", 0.2)))
            elif url.path == "/gzip":  # a small compressed body that inflates to ``size``
                raw = gzip.compress(b"\0" * int(query["size"]))
                self._answer(200, raw, {"Content-Encoding": "gzip"})
            elif url.path == "/chunked":  # no Content-Length: ``size`` bytes in 64 KiB chunks
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, int(query["size"]), 65536):
                    chunk = b"x" * min(65536, int(query["size"]) - start)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            elif url.path == "/raw":  # ``body`` sent as is, labelled JSON (NaN, "\\ud800")
                self._answer(200, query["body"].encode())
            elif url.path == "/redirect":
                self._answer(302, {}, {"Location": query["to"]})
            elif url.path == "/big":
                self._answer(200, b"x" * int(query.get("size", 100_000)))
            elif url.path == "/slow":
                time.sleep(float(query.get("seconds", 2)))
                self._answer(200, {"slow": True})
            elif url.path == "/text":
                raw = b"plain words"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            elif url.path == "/v1/chat/completions":
                self._answer(
                    200,
                    {
                        "model": "fake-1",
                        "usage": {"total_tokens": 3},
                        "choices": [
                            {"message": {"role": "assistant", "content": server.ai_answer}}
                        ],
                    },
                )
            else:
                self._answer(200, {"path": url.path, "received": body, "userId": 42})

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler


@pytest.fixture
def http_server() -> Iterator[FakeServer]:
    server = FakeServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
