"""The engine's clock. Every due time (sleeps, retries, deadlines) is computed from ``now()``.

Tests move it forward (``automation.testing``'s ``clock`` fixture) to fire durable timers at
once; in production it is this machine's time (keep machines on NTP; a fired timer wakes its
run even when the sweeping machine's clock runs a little ahead of the worker's).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

_offset = timedelta(0)


def now() -> datetime:
    return timezone.now() + _offset


def advance(delta: timedelta) -> None:
    """Move the clock forward (tests only move it; production never calls this)."""
    global _offset
    if delta < timedelta(0):
        raise ValueError("the clock only moves forward")
    _offset += delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)
