"""`manage.py rebuild_projection NAME`: empty a projection's models and fold the log again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from events import projections
from events.models import ProjectionCheckpoint


class Command(BaseCommand):
    help = (
        "Rebuild a projection from the start of the event log: empty the models it names "
        "(@projection(models=[...])), reset its checkpoint and apply every event again, oldest "
        "first. Events arriving meanwhile are applied by the periodic pass. Example: "
        "manage.py rebuild_projection order_totals. --list shows the projections."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", help="The projection's name (see --list).")
        parser.add_argument("--list", action="store_true", help="List projections and lag.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            self._list()
            return
        if not options["name"]:
            raise CommandError("name a projection (manage.py rebuild_projection --list shows them)")
        try:
            applied = projections.projection_rebuild(options["name"])
        except KeyError as exc:
            raise CommandError(exc.args[0]) from None
        error = ProjectionCheckpoint.objects.get(name=options["name"]).error
        if error:
            raise CommandError(
                f"Applied {applied} event(s), then stopped: {error.splitlines()[0]}. Fix the "
                "handler and run the command again."
            )
        self.stdout.write(f"Rebuilt {options['name']}: applied {applied} event(s).")

    def _list(self) -> None:
        checkpoints = {row.name: row for row in ProjectionCheckpoint.objects.all()}
        for proj in projections.registered():
            behind, seconds = projections.lag(proj, checkpoints.get(proj.name))
            self.stdout.write(
                f"{proj.name} on {proj.on}: {behind} event(s) behind ({seconds:.0f}s)"
            )
