"""`manage.py demo`: an approval waiting in the browser, made by one command.

It creates the `managers` group and a demo approver in it, loads the declarative expense
approval from examples/declarative/ and sends it an example event. Running it again creates
nothing twice: the group and user are looked up, an unchanged definition makes no version, and
the event carries a fixed idempotency key, so the second one is a duplicate that starts no run.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from automation.commands import workflow_definition_save
from events.services import event_record

DEFINITION = Path(settings.BASE_DIR) / "examples" / "declarative" / "expense-approval.yaml"
APPROVER = "demo-approver"
GROUP = "managers"
EVENT_TYPE = "example.declared.expense.submitted"
# The same key on every run: the event is stored once, so one run and one approval exist.
IDEMPOTENCY_KEY = "manage.py-demo-expense"


class Command(BaseCommand):
    help = (
        "Create the 'managers' group and a demo approver (its password is set anew and printed "
        "on every run), load examples/declarative/expense-approval.yaml and send it an example "
        "event, so an approval waits at /app/approvals/. Safe to run again: nothing is "
        "duplicated. Example: manage.py demo"
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            password = self._approver()
            workflow, version, created = workflow_definition_save(
                definition=yaml.safe_load(DEFINITION.read_text(encoding="utf-8"))
            )
            event, stored = event_record(
                type=EVENT_TYPE,
                data={"amount": 90, "employee": "demo-employee@example.com"},
                source="cli",
                idempotency_key=IDEMPOTENCY_KEY,
            )
        note = f"version {version.number} created" if created else "unchanged"
        self.stdout.write(f"Workflow {workflow.name}: {note}.")
        sent = "sent" if stored else "sent before (this run stored no new one)"
        self.stdout.write(f"Event {event.id} ({EVENT_TYPE}): {sent}.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Sign in as {APPROVER!r} with password {password!r} at "
                f"{settings.SITE_URL}/app/approvals/ to approve or reject it."
            )
        )

    def _approver(self) -> str:
        """The demo approver, in the managers group, with a new password (returned)."""
        group, _ = Group.objects.get_or_create(name=GROUP)
        user, _ = get_user_model().objects.get_or_create(
            username=APPROVER, defaults={"email": "demo-approver@example.com"}
        )
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.save(update_fields=["password"])
        user.groups.add(group)
        return password
