"""`manage.py purge`: delete old events and finished runs, in batches (retention)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from automation.retention import runs_expired, runs_purge
from events.retention import events_expired, events_purge


class Command(BaseCommand):
    help = (
        "Delete finished runs (with their steps, timers, waits and approvals) that finished "
        "more than --runs-older-than days ago, and routed events received more than "
        "--events-older-than days ago (events that started a run still active are kept). "
        "Defaults: RUNS_RETENTION_DAYS and EVENTS_RETENTION_DAYS; 0 keeps them. Deletes "
        "--batch-size rows per transaction. The periodic automation.purge task does the same. "
        "Example: manage.py purge --runs-older-than 30 --events-older-than 90 --dry-run"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--runs-older-than",
            type=int,
            default=settings.RUNS_RETENTION_DAYS,
            metavar="DAYS",
            help="Finished runs older than this many days (default: %(default)s; 0: none).",
        )
        parser.add_argument(
            "--events-older-than",
            type=int,
            default=settings.EVENTS_RETENTION_DAYS,
            metavar="DAYS",
            help="Routed events older than this many days (default: %(default)s; 0: none).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=settings.RETENTION_BATCH_SIZE,
            help="Rows deleted per transaction (default: %(default)s).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        runs_days, events_days = options["runs_older_than"], options["events_older_than"]
        if runs_days < 0 or events_days < 0 or options["batch_size"] < 1:
            raise CommandError("Ages must be 0 or more days and --batch-size at least 1.")
        if not runs_days and not events_days:
            self.stdout.write(
                "Nothing to purge: give --runs-older-than and/or --events-older-than (days), "
                "or set RUNS_RETENTION_DAYS / EVENTS_RETENTION_DAYS."
            )
            return
        batch = options["batch_size"]
        plans = [
            ("finished runs", runs_days, runs_expired, runs_purge),
            ("events", events_days, events_expired, events_purge),
        ]
        for what, days, expired, purge in plans:
            if not days:
                continue
            age = timedelta(days=days)
            if options["dry_run"]:
                count = expired(older_than=age).count()
                self.stdout.write(f"Would delete {count} {what} older than {days} day(s).")
            else:
                deleted = purge(older_than=age, batch_size=batch)
                self.stdout.write(f"Deleted {deleted} {what} older than {days} day(s).")
