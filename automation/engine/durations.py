"""Durations as people write them in definitions: "30s", "10m", "2d", "1h30m", "500ms"."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
# Longer is a typo, not a plan; and "now + 99999999w" is past the year 9999 (OverflowError).
MAX_DURATION = timedelta(days=3650)


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """A timedelta from "30s"-style text, a number of seconds, or a timedelta.

    Raises ValueError saying what is accepted.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip().replace(" ", "")
        parts = _PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(
                f"{value!r} is not a duration; write it like 500ms, 30s, 10m, 2h, 1d, 1w or 1h30m"
            )
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    else:
        raise ValueError(f"{value!r} is not a duration; write it like 30s, 10m or 2d")
    if seconds < 0:
        raise ValueError(f"{value!r} is negative; durations must be zero or more")
    if not math.isfinite(seconds) or seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{value!r} is longer than the limit of 3650d (ten years)")
    return timedelta(seconds=seconds)
