"""A circuit breaker's policy, read from a step, an action or the settings.

Apart from automation.engine.circuits (which reads and writes the shared Circuit rows) so that
declaring ``@action(circuit=...)`` needs no database: a module of actions can be imported
before Django is set up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from automation.engine.durations import parse_duration

FIELDS = ("failures", "within", "open_for")


@dataclass(frozen=True)
class CircuitPolicy:
    """When a circuit opens (``failures`` within ``within``) and for how long (``open_for``)."""

    failures: int = 5
    within: timedelta = timedelta(minutes=1)
    open_for: timedelta = timedelta(seconds=30)

    @classmethod
    def from_value(cls, value: dict[str, Any], base: CircuitPolicy | None = None) -> CircuitPolicy:
        """A policy from ``{"failures": 5, "within": "1m", "open_for": "30s"}``; fields left
        out come from ``base`` (the settings' defaults). ValueError says what is wrong."""
        if not isinstance(value, dict):
            raise ValueError("a circuit is true, false or {failures, within, open_for}")
        unknown = sorted(set(value) - set(FIELDS))
        if unknown:
            raise ValueError(
                f"unknown circuit field {unknown[0]!r} (use failures, within, open_for)"
            )
        base = base or cls()
        failures = value.get("failures", base.failures)
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise ValueError("circuit failures must be a whole number of at least 1")
        durations = {}
        for name in ("within", "open_for"):
            try:
                durations[name] = (
                    parse_duration(value[name]) if name in value else getattr(base, name)
                )
            except ValueError as exc:
                raise ValueError(f"circuit {name}: {exc}") from None
            if durations[name] <= timedelta(0):
                raise ValueError(f"circuit {name} must be longer than zero")
        return cls(failures=failures, **durations)
