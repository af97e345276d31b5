"""The reads of a workflow's page beside its diagram: what changed between two versions, and
the runs still in flight."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from automation.models import ACTIVE_STATUSES, Run, Workflow, WorkflowVersion

IN_FLIGHT_SHOWN = 25


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "del", "hunk", "same"
    text: str


@dataclass(frozen=True)
class VersionDiff:
    older: WorkflowVersion
    newer: WorkflowVersion
    lines: list[DiffLine]

    @property
    def changed(self) -> bool:
        return any(line.kind in ("add", "del") for line in self.lines)

    @property
    def counts(self) -> tuple[int, int]:
        return (
            sum(line.kind == "add" for line in self.lines),
            sum(line.kind == "del" for line in self.lines),
        )


def shown_definition(version: WorkflowVersion) -> Any:
    """What a version is, as the diff compares it: a declarative version's definition; for a
    code version (its definition is the code), where the code is and its trigger."""
    if version.definition:
        return version.definition
    return {
        "code_ref": version.code_ref,
        "checksum": version.checksum,
        "trigger_event": version.trigger_event,
        "trigger_filter": version.trigger_filter,
    }


def version_diff(older: WorkflowVersion, newer: WorkflowVersion) -> VersionDiff:
    """A unified diff of the two versions' definitions as pretty JSON (keys sorted, so only
    real changes show), three lines of context."""
    before = _pretty(shown_definition(older)).splitlines()
    after = _pretty(shown_definition(newer)).splitlines()
    lines = []
    raw = difflib.unified_diff(before, after, f"v{older.number}", f"v{newer.number}", lineterm="")
    for line in raw:
        if line.startswith(("---", "+++")):
            continue
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")
        lines.append(DiffLine(kind, line))
    return VersionDiff(older, newer, lines)


def pick_diff(
    versions: list[WorkflowVersion], older: str | None, newer: str | None
) -> VersionDiff | None:
    """The diff the page shows: the numbers asked for (``?from=&to=``), else the latest
    version against the one before it (also for a number it does not have). None with fewer
    than two versions."""
    by_number = {str(v.number): v for v in versions}
    if len(by_number) < 2:
        return None
    ordered = sorted(versions, key=lambda v: v.number)
    old = by_number.get(older or "", ordered[-2])
    new = by_number.get(newer or "", ordered[-1])
    return version_diff(old, new)


def in_flight_runs(workflow: Workflow) -> QuerySet[Run]:
    """Its runs not finished yet (pending, running, waiting), newest first."""
    return (
        Run.objects.filter(workflow=workflow, status__in=ACTIVE_STATUSES)
        .select_related("version")
        .order_by("-created_at", "-id")[:IN_FLIGHT_SHOWN]
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
