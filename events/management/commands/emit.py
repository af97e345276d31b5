"""`manage.py emit`: store an event from the shell, as an external system or the app would."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from events import services


class Command(BaseCommand):
    help = (
        "Store an event and route it to the workflows that subscribe to it (they run on the "
        "workers, or in the `serve` process in embedded mode). Prints the event's id. "
        "Example: manage.py emit order.created --data '{\"id\": 42}' --correlation-id order-42"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("type", help="The event type, e.g. order.created.")
        parser.add_argument(
            "--data",
            default="{}",
            help="The event data: a JSON object, or - to read it from standard input "
            "(default: {}).",
        )
        parser.add_argument("--source", default="cli", help="Where it came from (default: cli).")
        parser.add_argument("--subject", default="", help="What it is about, e.g. order/42.")
        parser.add_argument("--correlation-id", default="", help="Ties related events and runs.")
        parser.add_argument(
            "--idempotency-key",
            default=None,
            help="Emitting twice with the same key (and source) stores one event.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        raw = sys.stdin.read() if options["data"] == "-" else options["data"]
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--data is not JSON: {exc}") from None
        try:
            event, created = services.event_record(
                type=options["type"],
                data=data,
                source=options["source"],
                subject=options["subject"],
                correlation_id=options["correlation_id"],
                idempotency_key=options["idempotency_key"],
            )
        except services.InvalidEvent as exc:
            raise CommandError(f"The event was not stored: {exc}") from None
        note = "" if created else " (duplicate: stored before under this idempotency key)"
        self.stdout.write(f"{event.id}{note}")
