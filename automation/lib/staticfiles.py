"""WhiteNoise for both servers: under ASGI, static files stream as an async iterator.

WhiteNoise 6 answers with a synchronous file iterator. Django's ASGI handler can only consume
that by reading the whole file in one go, and warns on every static file ("StreamingHttpResponse
must consume synchronous iterators"). Under ASGI this middleware hands it the same chunks as an
async iterator instead, each read in a worker thread; under WSGI nothing changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest
from whitenoise.middleware import WhiteNoiseMiddleware as BaseWhiteNoiseMiddleware


class WhiteNoiseMiddleware(BaseWhiteNoiseMiddleware):
    @staticmethod
    def serve(static_file: Any, request: HttpRequest) -> Any:
        response = BaseWhiteNoiseMiddleware.serve(static_file, request)
        if isinstance(request, ASGIRequest):
            response.streaming_content = _in_threads(iter(response.streaming_content))
        return response


async def _in_threads(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        yield chunk
