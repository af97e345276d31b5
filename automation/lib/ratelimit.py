"""Fixed-window rate limits shared by every process that shares the cache.

A window's counter is one cache key, created with ``add`` and counted with ``incr``: atomic on
Redis (REDIS_URL set: every web process counts together) and within the single embedded
process (an in-memory cache). If the cache is unreachable, requests are let through and the
problem is logged: a limit must never turn an outage of Redis into an outage of ingest.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.core.cache import caches

logger = logging.getLogger(__name__)

CACHE_ALIAS = "ratelimit"

Rate = tuple[int, int]  # (requests allowed, per this many seconds)


def hit(key: str, rate: Rate | None) -> int | None:
    """Count one request against ``key``. None when it is allowed; otherwise the seconds until
    the window ends (for Retry-After)."""
    if rate is None:
        return None
    allowed, seconds = rate
    now = time.time()
    cache_key = _cache_key(key, seconds, now)
    cache = caches[CACHE_ALIAS]
    try:
        cache.add(cache_key, 0, timeout=seconds + 1)
        count = cache.incr(cache_key)
    except ValueError:  # the key expired between add and incr: a new window began
        return None
    except Exception:
        logger.warning("rate limit cache unavailable; letting the request through", exc_info=True)
        return None
    if count <= allowed:
        return None
    return _until_window_ends(seconds, now)


def _cache_key(key: str, seconds: int, now: float) -> str:
    return f"ratelimit:{key}:{seconds}:{int(now // seconds)}"


def _until_window_ends(seconds: int, now: float) -> int:
    return max(1, math.ceil((int(now // seconds) + 1) * seconds - now))


def fingerprint(secret: str) -> str:
    """A short, one-way name for a credential, so cache keys never hold the credential."""
    return hashlib.sha256(secret.encode()).hexdigest()[:24]
