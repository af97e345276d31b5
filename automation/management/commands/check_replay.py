"""`manage.py check_replay`: replay stored journals against the code now loaded (a deploy check)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_date, parse_datetime

from automation.engine.replaycheck import check_runs, runs_to_check
from automation.models import Workflow

DEFAULT_LIMIT = 1000


def _since(value: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 time with its zone."""
    try:
        day = parse_date(value)  # a bare date first: parse_datetime reads it as naive midnight
        moment = None if day else parse_datetime(value)
    except ValueError:
        moment = day = None
    if day is not None:
        return datetime.combine(day, time.min, tzinfo=UTC)
    if moment is None or moment.tzinfo is None:
        raise CommandError(
            f"--since {value!r}: give a date (2026-01-31) or a time with its zone "
            "(2026-01-31T12:00Z)"
        )
    return moment


class Command(BaseCommand):
    help = (
        "Replay the stored journals of code workflow runs against the code now loaded, "
        "without side effects (no action runs, nothing is written), and report every run "
        "whose replay diverges, with the step where it does. Exits 1 when any diverges: run "
        "it before a deploy, with the new code. Example: manage.py check_replay --workflow "
        "order-fulfilment --since 2026-01-31 --limit 500"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workflow", help="Only runs of this code workflow (its name).")
        parser.add_argument(
            "--since", help="Only runs created at or after this date or ISO 8601 time."
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=DEFAULT_LIMIT,
            help=f"Check at most this many runs, newest first (default {DEFAULT_LIMIT}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["workflow"]
        if name and not Workflow.objects.filter(name=name, kind=Workflow.Kind.CODE).exists():
            raise CommandError(f"--workflow {name!r}: no code workflow of that name")
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        since = _since(options["since"]) if options["since"] else None
        runs = runs_to_check(workflow=name, since=since, limit=options["limit"])
        counts = {"ok": 0, "diverged": 0, "skipped": 0}
        for outcome in check_runs(runs):
            counts[outcome.result] += 1
            label = (
                f"run {outcome.run_id} ({outcome.workflow} v{outcome.version}, "
                f"{outcome.run_status})"
            )
            if outcome.result == "diverged":
                self.stdout.write(f"DIVERGED {label} at step {outcome.step!r}: {outcome.message}")
            elif outcome.result == "skipped" and options["verbosity"] > 1:
                self.stdout.write(f"skipped {label}: {outcome.message}")
            elif options["verbosity"] > 1:
                self.stdout.write(f"ok {label}")
        self.stdout.write(
            f"Checked {len(runs)} run(s): {counts['ok']} replay cleanly, "
            f"{counts['diverged']} diverge, {counts['skipped']} skipped."
        )
        if counts["diverged"]:
            raise SystemExit(1)
