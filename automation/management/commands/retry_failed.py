"""`manage.py retry_failed`: retry failed runs in bulk (the dead letter), from their failed step."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from automation.commands import runs_retry_failed
from automation.models import Run, RunStatus


class Command(BaseCommand):
    help = (
        "Retry failed runs from the step that failed them, with a fresh attempt budget "
        "(earlier steps are not repeated). Narrow them down with --workflow, --step and "
        "--since; look first with --dry-run. Example: manage.py retry_failed --workflow "
        "order-fulfilment --since 2026-01-31T00:00Z --dry-run"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workflow", help="Only runs of this workflow (its name).")
        parser.add_argument("--step", help="Only runs that failed at this step id.")
        parser.add_argument("--since", help="Only runs that failed at or after (ISO 8601).")
        parser.add_argument("--limit", type=int, help="Retry at most this many, oldest first.")
        parser.add_argument(
            "--dry-run", action="store_true", help="List the runs that would be retried."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        runs = Run.objects.filter(status=RunStatus.FAILED).select_related("workflow")
        if options["workflow"]:
            runs = runs.filter(workflow__name=options["workflow"])
        if options["step"]:
            runs = runs.filter(error__step=options["step"])
        if options["since"]:
            since = parse_datetime(options["since"])
            if since is None or since.tzinfo is None:
                raise CommandError("--since must be ISO 8601 with a zone, e.g. 2026-01-31T12:00Z")
            runs = runs.filter(finished_at__gte=since)
        runs = runs.order_by("finished_at", "id")
        if options["limit"] is not None:
            runs = runs.filter(id__in=list(runs.values_list("id", flat=True)[: options["limit"]]))
        if options["dry_run"]:
            for run in runs:
                step = (run.error or {}).get("step", "?")
                message = (run.error or {}).get("message", "")
                self.stdout.write(f"would retry {run.id} {run.workflow.name} at {step}: {message}")
            self.stdout.write(f"Would retry {runs.count()} run(s).")
            return
        retried = runs_retry_failed(runs=runs)
        self.stdout.write(f"Retried {retried} run(s).")
