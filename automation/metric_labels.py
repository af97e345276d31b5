"""Label values for /metrics that stay few and printable whatever the input.

Every distinct label value is a time series kept for the life of the process (and, in
multiprocess mode, in its files), so values taken from outside must come from a bounded set.
Before, 3,000 event types invented by unauthenticated webhook senders grew /metrics to 1.6 MB,
``source="run:<uuid>"`` made one series per run, and a NUL byte in a CloudEvent source was
printed raw. Now:

- an event type is its own label only if a workflow listens for it (an active workflow's
  trigger pattern or an open wait) when it is first seen, at most ``MAX_EVENT_TYPES`` types
  per process; else ``other``;
- a source is reduced to its kind: ``webhook``, ``run``, ``signal``, ``schedule``, ``api``,
  ``app``, ``manual``; any other (a CloudEvent's, a custom ``emit`` source) is ``other``;
- every value has its control characters replaced and is cut to ``MAX_LENGTH`` characters
  (the exposition format escapes only backslash, quote and newline).
"""

from __future__ import annotations

import re
import time
from typing import Any

from django.conf import settings
from django.db.models.signals import post_save

from automation.engine.matching import type_matches

OTHER = "other"
MAX_EVENT_TYPES = 200
MAX_LENGTH = 100
SOURCE_KINDS = frozenset({"webhook", "run", "signal", "schedule", "api", "app", "manual"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Labels:
    """The label helpers, with the per-process cache of the event types workflows listen for
    (read at most once per EVENTS_CONFIG_CACHE_SECONDS, cleared when a workflow is saved)."""

    def __init__(self) -> None:
        self._patterns: tuple[str, ...] = ()
        self._loaded_at: float | None = None
        self._seen: set[str] = set()  # a wildcard pattern (order.*) matches unboundedly many

    def clean(self, value: str) -> str:
        return _CONTROL.sub("\ufffd", str(value))[:MAX_LENGTH]

    def source_kind(self, source: str) -> str:
        kind = source.split(":", 1)[0]
        return kind if kind in SOURCE_KINDS else OTHER

    def event_type(self, event_type: str) -> str:
        if event_type in self._seen:
            return self.clean(event_type)
        listened = any(type_matches(pattern, event_type) for pattern in self._listened())
        if not listened or len(self._seen) >= MAX_EVENT_TYPES:
            return OTHER
        self._seen.add(event_type)
        return self.clean(event_type)

    def cache_clear(self, **_: Any) -> None:
        self._loaded_at = None

    def _listened(self) -> tuple[str, ...]:
        now = time.monotonic()
        fresh = settings.EVENTS_CONFIG_CACHE_SECONDS
        if self._loaded_at is None or now - self._loaded_at >= fresh:
            self._patterns = _listened_patterns()
            self._loaded_at = now
        return self._patterns


def _listened_patterns() -> tuple[str, ...]:
    from automation.models import Wait, WorkflowVersion

    triggers = (
        WorkflowVersion.objects.filter(workflow__active=True)
        .exclude(trigger_event="")
        .values_list("trigger_event", flat=True)
        .distinct()
    )
    waits = (
        Wait.objects.filter(status=Wait.Status.OPEN).values_list("event_type", flat=True).distinct()
    )
    return tuple(sorted({*triggers[:MAX_EVENT_TYPES], *waits[:MAX_EVENT_TYPES]}))[:MAX_EVENT_TYPES]


labels = Labels()

# Saving a workflow (or a version of one) in this process clears the cache at once.
for _model in ("automation.Workflow", "automation.WorkflowVersion"):
    post_save.connect(labels.cache_clear, sender=_model, dispatch_uid=f"metric_labels.{_model}")
