"""Retry policies: how often and how long apart a failed step is tried again."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from automation.engine.durations import parse_duration
from automation.engine.errors import NonRetryableError, RetryAfter

_BACKOFF = {"exponential": 2.0, "fixed": 1.0}
MAX_RETRY_AFTER = 86400.0  # no action can park a step for longer than a day


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` counts the first try; the n-th retry waits ``initial * backoff**(n-1)``,
    capped at ``max_interval``, with ±``jitter`` spread so retries of many runs don't align."""

    max_attempts: int = 3
    initial: float = 1.0
    backoff: float = 2.0
    max_interval: float = 600.0
    jitter: float = 0.2
    non_retryable: tuple[type[BaseException], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("retry max_attempts must be at least 1")
        if self.backoff < 1:
            raise ValueError("retry backoff must be 'exponential', 'fixed' or a factor >= 1")

    @classmethod
    def from_value(cls, value: Any, default: RetryPolicy | None = None) -> RetryPolicy:
        """A policy from a RetryPolicy, a dict as written in definitions, or None (default)."""
        if value is None:
            return default or cls()
        if isinstance(value, RetryPolicy):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"retry must be a dict or RetryPolicy, not {type(value).__name__}")
        unknown = set(value) - {
            "max_attempts",
            "backoff",
            "initial",
            "max",
            "jitter",
            "non_retryable",
        }
        if unknown:
            raise ValueError(f"unknown retry option(s): {', '.join(sorted(unknown))}")
        base = default or cls()
        backoff = value.get("backoff", base.backoff)
        if isinstance(backoff, str):
            if backoff not in _BACKOFF:
                raise ValueError(
                    f"retry backoff {backoff!r}: use 'exponential', 'fixed' or a factor"
                )
            backoff = _BACKOFF[backoff]
        return cls(
            max_attempts=int(value.get("max_attempts", base.max_attempts)),
            initial=_seconds(value.get("initial"), base.initial),
            backoff=float(backoff),
            max_interval=_seconds(value.get("max"), base.max_interval),
            jitter=float(value.get("jitter", base.jitter)),
            non_retryable=tuple(
                _exception_class(item) for item in value.get("non_retryable", base.non_retryable)
            ),
        )

    def is_retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, (NonRetryableError, *self.non_retryable)):
            return False
        return isinstance(exc, Exception)

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if isinstance(exc, RetryAfter):
            return _bounded(exc.seconds)
        base = min(self.initial * self.backoff ** (attempt - 1), self.max_interval)
        spread = base * self.jitter
        return max(0.0, base + random.uniform(-spread, spread))  # noqa: S311  (not crypto)

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "initial": self.initial,
            "backoff": self.backoff,
            "max": self.max_interval,
            "jitter": self.jitter,
            "non_retryable": [f"{c.__module__}.{c.__qualname__}" for c in self.non_retryable],
        }


def _bounded(seconds: Any) -> float:
    """A RetryAfter's seconds as a delay the scheduler can use: whatever an action asked for
    (NaN, infinite, negative, huge, not a number), between 0 and MAX_RETRY_AFTER."""
    try:
        value = float(seconds)
    except OverflowError:  # an int beyond any float
        return MAX_RETRY_AFTER if seconds > 0 else 0.0
    except (TypeError, ValueError):
        return 0.0
    if math.isnan(value):
        return 0.0
    return min(max(value, 0.0), MAX_RETRY_AFTER)


def _seconds(value: Any, default: float) -> float:
    return default if value is None else parse_duration(value).total_seconds()


def _exception_class(item: Any) -> type[BaseException]:
    """An exception class, or its dotted name as stored for parallel branches
    (``builtins.KeyError``, ``myapp.errors.SoldOut``)."""
    from django.utils.module_loading import import_string

    found = import_string(item) if isinstance(item, str) else item
    if isinstance(found, type) and issubclass(found, BaseException):
        return found
    raise ValueError(f"retry non_retryable: {item!r} is not an exception class")
