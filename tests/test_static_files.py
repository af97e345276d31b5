"""Static files (admin, API docs) are served by WhiteNoise under both servers; under ASGI as an
async stream, so Django neither buffers them whole nor warns on every file."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

CONTENT = b"body { color: teal; }\n" * 2000  # several chunks


@pytest.fixture
def static_file(settings):
    path = Path(settings.STATIC_ROOT) / "ops-test.css"
    path.write_bytes(CONTENT)
    yield "/static/ops-test.css"
    path.unlink()


async def test_static_files_stream_asynchronously_under_asgi(static_file, async_client):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        response = await async_client.get(static_file)
        assert response.status_code == 200
        assert response.is_async
        body = b"".join([chunk async for chunk in response.streaming_content])
    assert body == CONTENT
    assert response["Content-Type"].startswith("text/css")


def test_static_files_are_served_under_wsgi(static_file, client):
    response = client.get(static_file)
    assert response.status_code == 200
    assert not response.is_async
    assert b"".join(response.streaming_content) == CONTENT
