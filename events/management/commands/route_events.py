"""`manage.py route_events`: the router of the outbox routing mode (EVENTS_ROUTING=outbox).

It routes stored, unrouted events oldest first and sleeps EVENTS_ROUTER_POLL_INTERVAL when
there are none. Run one or more beside the workers; each event is claimed by exactly one of
them (a conditional update), so extra routers only add throughput.
"""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, connections

from events.routing import events_route_unrouted


class Command(BaseCommand):
    help = "Route stored events to their workflows until stopped (EVENTS_ROUTING=outbox)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=500, help="Events per database read.")

    def handle(self, *args: Any, batch: int, **options: Any) -> None:
        self.stopping = False
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        self.stdout.write(f"Routing events (mode {settings.EVENTS_ROUTING}). Ctrl-C to stop.")
        while not self.stopping:
            if self._route_some(batch) == 0:
                time.sleep(settings.EVENTS_ROUTER_POLL_INTERVAL)
        self.stdout.write("Stopped.")

    def _route_some(self, batch: int) -> int:
        try:
            return events_route_unrouted(limit=batch, grace=None)
        except DatabaseError as exc:  # the database is down: wait and try again
            self.stderr.write(f"database unavailable ({exc}); retrying in 1s")
            connections.close_all()
            time.sleep(1.0)
            return 0

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
