"""Find the webhook endpoint of a request, cached per process (the webhook hot path).

An endpoint is read from the database at most once per EVENTS_CONFIG_CACHE_SECONDS per
process. Saving or deleting one clears this process's cache at once; other processes see a
disabled endpoint within that time, and a rotated secret at once, because a signature that
fails against a cached endpoint is checked again against a fresh read.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from events.models import WebhookEndpoint

_cache: dict[str, tuple[WebhookEndpoint, float]] = {}


def endpoint_active(slug: str, *, fresh: bool = False) -> WebhookEndpoint | None:
    """The active endpoint with this slug, or None (unknown or disabled slugs are not cached)."""
    if not fresh:
        cached = _cache.get(slug)
        if cached is not None and time.monotonic() - cached[1] < _ttl():
            return cached[0]
    endpoint = WebhookEndpoint.objects.filter(slug=slug, active=True).first()
    if endpoint is None:
        _cache.pop(slug, None)
    else:
        _cache[slug] = (endpoint, time.monotonic())
    return endpoint


def cache_clear(**_: Any) -> None:
    _cache.clear()


def _ttl() -> float:
    return settings.EVENTS_CONFIG_CACHE_SECONDS
