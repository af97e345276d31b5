from __future__ import annotations

import pytest

from events import webhooks
from events.models import Event


@pytest.fixture
def make_endpoint(db):
    """Create a webhook endpoint; returns (endpoint, secret)."""

    def make(slug: str = "shop", scheme: str = "standard_webhooks", **options):
        return webhooks.webhook_endpoint_create(slug=slug, scheme=scheme, **options)

    return make


@pytest.fixture
def post_hook(client):
    """POST a raw body to /hooks/<slug>/ with the given headers."""

    def post(slug, body: bytes, headers=None, content_type="application/json"):
        return client.post(
            f"/hooks/{slug}/", data=body, content_type=content_type, headers=headers or {}
        )

    return post


@pytest.fixture
def nothing_stored():
    """Assert, after the test's request, that no event was stored."""

    def check():
        assert Event.objects.count() == 0

    return check


@pytest.fixture(autouse=True)
def _fresh_config_caches():
    """Schemas and bridges are cached per process; a rolled-back test must not leave them."""
    from events import bridge, endpoints, schemas

    for module in (schemas, bridge, endpoints):
        module.cache_clear()
    yield
    for module in (schemas, bridge, endpoints):
        module.cache_clear()
