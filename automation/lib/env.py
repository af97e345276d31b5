"""Read settings from environment variables, failing loudly on values that cannot be used.

Every helper raises ``ImproperlyConfigured`` naming the variable and the accepted values, so a
typo in a deployment stops the process at start instead of surfacing later as odd behaviour.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    """The variable's value with surrounding blanks removed, or ``default`` when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name).lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={os.environ[name]!r} is not a boolean; use one of "
        f"{', '.join(sorted(_TRUE))} or {', '.join(sorted(_FALSE))}."
    )


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    raw = env_str(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ImproperlyConfigured(f"{name}={value} is out of range; it must be {bounds}.")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env_str(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is out of range; it must be >= {minimum}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; blanks around items are ignored."""
    raw = env_str(name)
    if not raw:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default).lower()
    if value not in choices:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not supported; use one of: {', '.join(choices)}."
        )
    return value


def data_dir(name: str, default: Path) -> Path:
    """The directory for embedded state (SQLite file, secret key, queue), created if missing."""
    path = Path(env_str(name, str(default))).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}={str(path)!r} cannot be created: {exc}.") from exc
    return path


def persistent_secret_key(directory: Path) -> str:
    """A secret key generated on first use and kept in ``directory`` so sessions survive restarts.

    Only the embedded mode uses this; production mode requires SECRET_KEY in the environment.
    """
    key_file = directory / "secret_key"
    if key_file.exists():
        key = key_file.read_text().strip()
        if len(key) >= 50:
            return key
    key = secrets.token_urlsafe(64)
    # Create with owner-only permissions before writing, so the key is never world-readable.
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
            "hour": 3600, "d": 86400, "day": 86400}  # fmt: skip


def parse_rate(name: str, raw: str) -> tuple[int, int] | None:
    """``"100/min"`` → ``(100, 60)``: requests allowed per window of seconds. ``""`` or
    ``off``: no limit (None). Periods: s, m (min), h (hour), d (day), optionally with a count
    (``10/5m``)."""
    raw = raw.strip().lower()
    if raw in ("", "off", "none"):
        return None
    count, _, period = raw.partition("/")
    digits = period.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = period[len(digits) :]
    try:
        allowed, multiplier = int(count), int(digits or "1")
        seconds = _PERIODS[unit] * multiplier
    except (ValueError, KeyError):
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a rate; use <count>/<period> with a period of s, m, h or d "
            "(e.g. 100/m, 5000/h, 10/5m), or off."
        ) from None
    if allowed < 1 or seconds < 1:
        raise ImproperlyConfigured(f"{name}={raw!r}: the count and the period must be positive.")
    return allowed, seconds


def env_rate(name: str, default: str = "") -> tuple[int, int] | None:
    return parse_rate(name, env_str(name, default))


def env_rates(name: str) -> dict[str, tuple[int, int] | None]:
    """``"shop=100/m,github=off"``: a rate per name."""
    rates: dict[str, tuple[int, int] | None] = {}
    for item in env_list(name, []):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ImproperlyConfigured(f"{name}: {item!r} is not <slug>=<rate>, e.g. shop=100/m.")
        rates[key.strip()] = parse_rate(name, value)
    return rates
