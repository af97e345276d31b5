"""Label values for /metrics that stay few and printable whatever the input.

Every distinct label value is a time series kept for the life of the process (and, in
multiprocess mode, in its files), so values taken from outside must come from a bounded set:
unauthenticated webhook senders choose event types freely, every run is a source, and the
exposition format escapes only backslash, quote and newline. So:

- an event type is its own label only if a workflow listens for it (an active workflow's
  trigger pattern or an open wait) when it is first seen, at most ``MAX_EVENT_TYPES`` types
  per process; else ``other``;
- a source is reduced to its kind: ``webhook``, ``run``, ``signal``, ``schedule``, ``api``,
  ``app``, ``manual``; any other (a CloudEvent's, a custom ``emit`` source) is ``other``;
- every value has its control characters replaced and is cut to ``MAX_LENGTH`` characters.

The patterns come from a loader installed by the app's ``ready()`` (automation.apps), which also
clears the cache when a workflow is saved.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from automation.engine.matching import type_matches

OTHER = "other"
MAX_EVENT_TYPES = 200
MAX_LENGTH = 100
#: Event types whose "listened for?" answer is remembered: senders invent types without end,
#: and each unknown one would otherwise be matched against every pattern on every ingest.
MAX_CACHED_TYPES = 4096
SOURCE_KINDS = frozenset({"webhook", "run", "signal", "schedule", "api", "app", "manual"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Labels:
    """The label helpers, with the per-process cache of the event types workflows listen for
    (read at most once per EVENTS_CONFIG_CACHE_SECONDS, cleared when a workflow is saved)."""

    def __init__(self, load_patterns: Callable[[], tuple[str, ...]] = tuple) -> None:
        self._load = load_patterns
        self._patterns: tuple[str, ...] = ()
        self._loaded_at: float | None = None
        self._seen: set[str] = set()  # a wildcard pattern (order.*) matches unboundedly many
        self._listened_for = functools.lru_cache(maxsize=MAX_CACHED_TYPES)(self._matches)

    def install(self, load_patterns: Callable[[], tuple[str, ...]]) -> None:
        """Read the listened-for patterns with ``load_patterns`` from now on."""
        self._load = load_patterns
        self.reset()

    def reset(self) -> None:
        """Forget every pattern, answer and labelled type (a new process's state)."""
        self._patterns = ()
        self._loaded_at = None
        self._seen.clear()
        self._listened_for.cache_clear()

    def clean(self, value: str) -> str:
        return _CONTROL.sub("\ufffd", str(value))[:MAX_LENGTH]

    def source_kind(self, source: str) -> str:
        kind = source.split(":", 1)[0]
        return kind if kind in SOURCE_KINDS else OTHER

    def event_type(self, event_type: str) -> str:
        if event_type in self._seen:
            return self.clean(event_type)
        self._refresh()
        if not self._listened_for(event_type) or len(self._seen) >= MAX_EVENT_TYPES:
            return OTHER
        self._seen.add(event_type)
        return self.clean(event_type)

    def cache_clear(self, **_: Any) -> None:
        self._loaded_at = None

    def _matches(self, event_type: str) -> bool:
        return any(type_matches(pattern, event_type) for pattern in self._patterns)

    def _refresh(self) -> None:
        now = time.monotonic()
        fresh = settings.EVENTS_CONFIG_CACHE_SECONDS
        if self._loaded_at is not None and now - self._loaded_at < fresh:
            return
        patterns = self._load()
        if patterns != self._patterns:  # the answers were given for the old patterns
            self._patterns = patterns
            self._listened_for.cache_clear()
        self._loaded_at = now


labels = Labels()
