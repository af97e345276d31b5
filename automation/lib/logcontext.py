"""Which event, run, step and correlation a log line was written for.

The engine opens a ``scope`` where it advances a run, executes a step or routes an event; every
log line written inside it (by the engine, a workflow or an action, any library) carries those
ids: as fields of the JSON object with LOG_FORMAT=json, as ``key=value`` after the message
otherwise. The ids live in a ContextVar, so threads of the embedded worker never mix them up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

KEYS = ("event_id", "run_id", "step_id", "correlation_id")

_ids: ContextVar[dict[str, str]] = ContextVar("automation_log_ids", default={})  # noqa: B039


def _clean(ids: dict[str, Any]) -> dict[str, str]:
    unknown = set(ids) - set(KEYS)
    if unknown:
        raise TypeError(f"unknown log context key(s) {sorted(unknown)}; use {', '.join(KEYS)}")
    return {key: str(value) for key, value in ids.items() if value not in (None, "")}


@contextmanager
def scope(**ids: Any) -> Iterator[None]:
    """Add ids to every log line written inside; the previous ids come back on exit."""
    token = _ids.set({**_ids.get(), **_clean(ids)})
    try:
        yield
    finally:
        _ids.reset(token)


def bind(**ids: Any) -> None:
    """Add ids learnt later in the current scope (a run's correlation id once it is loaded).
    Call it only inside a ``scope``, which takes them away again on exit."""
    _ids.set({**_ids.get(), **_clean(ids)})


def current() -> dict[str, str]:
    return dict(_ids.get())


class ContextFilter(logging.Filter):
    """Puts the ids on each record: as attributes (``record.run_id``; the JSON formatter writes
    them as fields) and as ``record.context``, `` run_id=... step_id=...`` for plain text."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _ids.get()
        for key, value in ids.items():
            setattr(record, key, value)
        record.context = "".join(f" {key}={ids[key]}" for key in KEYS if key in ids)
        return True
