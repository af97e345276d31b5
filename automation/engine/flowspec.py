"""The flow-control options of a workflow's trigger, read from a definition's ``trigger`` or
from ``@workflow``'s arguments: ``rate_limit``, ``throttle``, ``debounce``, ``batch`` and
``priority``.

Keys and the priority are CEL over ``trigger``, evaluated within matching's bounds. What the
options do with an event is :mod:`automation.engine.flow`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from automation.engine import matching
from automation.engine.durations import parse_duration
from automation.engine.errors import WorkflowError

OPTIONS = ("rate_limit", "throttle", "debounce", "batch", "priority")
MAX_BATCH = 1000  # events in one run's trigger.events
MAX_LIMIT = 10_000  # starts remembered per key; more is a typo and a large row
PRIORITY_RANGE = (-100, 100)


@dataclass(frozen=True)
class Limit:
    """``limit`` starts per ``period`` for each value of ``key`` (rate limit and throttle)."""

    limit: int
    period: timedelta
    key: str = ""


@dataclass(frozen=True)
class Debounce:
    """One run, ``period`` after the last event of a key; at most ``timeout`` after the first."""

    period: timedelta
    key: str = ""
    timeout: timedelta | None = None


@dataclass(frozen=True)
class Batch:
    """One run for up to ``max_size`` events of a key, started when the batch is full or
    ``timeout`` after its first event."""

    max_size: int
    timeout: timedelta
    key: str = ""


@dataclass(frozen=True)
class FlowControl:
    rate_limit: Limit | None = None
    throttle: Limit | None = None
    debounce: Debounce | None = None
    batch: Batch | None = None
    priority: str = ""

    def __bool__(self) -> bool:
        return bool(
            self.rate_limit or self.throttle or self.debounce or self.batch or self.priority
        )


NONE = FlowControl()


def from_options(options: dict[str, Any]) -> FlowControl:
    """The flow control of a trigger's options (a definition's ``trigger`` object, or
    ``@workflow``'s keyword arguments). Raises WorkflowError naming the option and what to
    write instead; definitions are checked earlier, with a path for each error, by
    :func:`errors`."""
    problems = errors(options)
    if problems:
        path, message = problems[0]
        raise WorkflowError(f"{path}: {message}")
    return _build(options)


def errors(options: dict[str, Any]) -> list[tuple[str, str]]:
    """(option path, message) for each value that is not usable; the shape (types, required
    fields) is the JSON schema's, so only what it cannot say is checked here."""
    problems: list[tuple[str, str]] = []
    for name in ("rate_limit", "throttle"):
        value = options.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            problems.append((name, "an object {limit, period, key?} is required"))
            continue
        limit = value.get("limit")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            problems.append((f"{name}.limit", f"a whole number from 1 to {MAX_LIMIT:,}"))
        problems += _duration(f"{name}.period", value.get("period"), positive=True)
        problems += _cel(f"{name}.key", value.get("key"))
    value = options.get("debounce")
    if value is not None:
        if not isinstance(value, dict):
            problems.append(("debounce", "an object {period, key?, timeout?} is required"))
        else:
            problems += _duration("debounce.period", value.get("period"), positive=True)
            if value.get("timeout") is not None:
                problems += _duration("debounce.timeout", value["timeout"], positive=True)
            problems += _cel("debounce.key", value.get("key"))
    value = options.get("batch")
    if value is not None:
        if not isinstance(value, dict):
            problems.append(("batch", "an object {max_size, timeout, key?} is required"))
        else:
            size = value.get("max_size")
            if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH:
                problems.append(("batch.max_size", f"a whole number from 1 to {MAX_BATCH:,}"))
            problems += _duration("batch.timeout", value.get("timeout"), positive=True)
            problems += _cel("batch.key", value.get("key"))
    grouping = [name for name in ("debounce", "batch", "throttle") if options.get(name) is not None]
    if len(grouping) > 1:
        problems.append(
            (
                grouping[1],
                f"a trigger may have one of debounce, batch and throttle, not {grouping[0]} and "
                f"{grouping[1]}: debounced and batched runs already start once per window; use "
                "rate_limit to cap those starts as well",
            )
        )
    if options.get("priority") is not None:
        problems += _cel("priority", options["priority"], required=True)
    return problems


def _duration(path: str, value: Any, *, positive: bool) -> list[tuple[str, str]]:
    if value is None:
        return [(path, 'a duration is required, e.g. "5s", "1m" or "1h"')]
    try:
        parsed = parse_duration(value)
    except ValueError as exc:
        return [(path, str(exc))]
    if positive and parsed <= timedelta(0):
        return [(path, 'must be longer than zero, e.g. "5s"')]
    return []


def _cel(path: str, value: Any, *, required: bool = False) -> list[tuple[str, str]]:
    if value is None and not required:
        return []
    if not isinstance(value, str) or not value.strip():
        return [(path, "a CEL expression over trigger is required, e.g. trigger.data.customer")]
    try:
        matching.compile_expression(value)
    except matching.ExpressionError as exc:
        return [(path, f"invalid CEL: {exc}")]
    return []


def _build(options: dict[str, Any]) -> FlowControl:
    def limit(value: dict[str, Any] | None) -> Limit | None:
        if value is None:
            return None
        return Limit(
            limit=value["limit"], period=parse_duration(value["period"]), key=value.get("key") or ""
        )

    debounce = options.get("debounce")
    batch = options.get("batch")
    return FlowControl(
        batch=None
        if batch is None
        else Batch(
            max_size=batch["max_size"],
            timeout=parse_duration(batch["timeout"]),
            key=batch.get("key") or "",
        ),
        rate_limit=limit(options.get("rate_limit")),
        throttle=limit(options.get("throttle")),
        debounce=None
        if debounce is None
        else Debounce(
            period=parse_duration(debounce["period"]),
            key=debounce.get("key") or "",
            timeout=parse_duration(debounce["timeout"])
            if debounce.get("timeout") is not None
            else None,
        ),
        priority=options.get("priority") or "",
    )
