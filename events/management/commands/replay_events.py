"""`manage.py replay_events`: store copies of past events and route them again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from automation.triggers import UnknownTarget, target_version
from events import routing, selectors, services


class Command(BaseCommand):
    help = (
        "Replay stored events of a type (exact, or a prefix such as order.*) received in a time "
        "range: each gets a copy caused by it (causation_id = the original's id), routed to "
        "the workflows subscribed now, or with --workflow to that one workflow only. Oldest "
        "first. Example: manage.py replay_events --type order.created --since "
        "2026-01-31T00:00Z --until 2026-02-01T00:00Z --workflow billing --dry-run"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--type", required=True, help="Event type, or a prefix like order.*")
        parser.add_argument("--since", help="Received at or after (ISO 8601 with a zone).")
        parser.add_argument("--until", help="Received before (ISO 8601 with a zone).")
        parser.add_argument("--source", help="Only events from this source (e.g. webhook:shop).")
        parser.add_argument("--limit", type=int, help="Replay at most this many.")
        parser.add_argument(
            "--workflow", help="Start only this workflow (no other subscriber, no waiting run)."
        )
        parser.add_argument(
            "--workflow-version",
            dest="workflow_version",
            type=int,
            help="With --workflow: that version (default: its latest).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be replayed; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        target = self._target(options)
        params = {"type": options["type"], "source": options["source"] or ""}
        params["received_after"] = options["since"] or ""
        params["received_before"] = options["until"] or ""
        try:
            events = selectors.events_filter(params).order_by("received_at", "id")
        except selectors.BadFilter as exc:
            raise CommandError(
                str(exc).replace("received_after", "--since").replace("received_before", "--until")
            ) from None
        if options["limit"] is not None:
            events = events[: options["limit"]]
        replayed = failed = 0
        for event in events.iterator(chunk_size=500):
            line = f"{event.id} {event.type} received {event.received_at:%Y-%m-%d %H:%M:%S}"
            if options["dry_run"]:
                self.stdout.write(f"would replay {line}")
                replayed += 1
                continue
            try:
                copy = routing.event_replay(event=event, **target)
            except (
                services.InvalidEvent,
                UnknownTarget,
            ) as exc:  # e.g. a schema added since it was stored
                self.stderr.write(f"not replayed {line}: {exc}")
                failed += 1
                continue
            self.stdout.write(f"replayed {line} as {copy.id}")
            replayed += 1
        verb = "Would replay" if options["dry_run"] else "Replayed"
        self.stdout.write(
            f"{verb} {replayed} event(s)" + (f"; {failed} refused." if failed else ".")
        )
        if failed:
            raise CommandError(f"{failed} event(s) could not be replayed (see above).")

    def _target(self, options: dict[str, Any]) -> dict[str, Any]:
        if options["workflow_version"] is not None and not options["workflow"]:
            raise CommandError(
                "--workflow-version needs --workflow (the workflow whose version it is)"
            )
        if not options["workflow"]:
            return {}
        if not options["type"].endswith("*"):
            try:  # refuse a workflow that cannot take these events before replaying any
                target_version(
                    workflow=options["workflow"],
                    version=options["workflow_version"],
                    event_type=options["type"],
                )
            except UnknownTarget as exc:
                raise CommandError(str(exc)) from None
        return {"workflow": options["workflow"], "version": options["workflow_version"]}
