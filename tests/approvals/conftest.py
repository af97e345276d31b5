"""The approvals cast: managers with email addresses (one without, one inactive), a director,
and a workflow that asks them with the options a test passes as its input."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from automation import workflow


@workflow("test-approval-options")
def approval_options(ctx: Any, event: Any) -> dict[str, Any]:
    """Asks ``assignees`` (default: the managers) with ``options`` passed to ctx.approval."""
    return ctx.approval(
        "ok",
        title=event.data.get("title", "Pay the invoice?"),
        assignees=event.data.get("assignees", ["group:managers"]),
        context={"amount": 1200, "supplier": "ACME"},
        **event.data.get("options", {}),
    )


@pytest.fixture
def team(django_user_model, users) -> dict[str, Any]:
    """ann and bob manage (with email), quiet manages without an email, gone manages but is
    inactive, dora directs, and oscar (the cast's outsider) has an email and no part in it."""
    managers = Group.objects.create(name="managers")
    directors = Group.objects.create(name="directors")
    people = {}
    for name, email, active in [
        ("ann", "ann@example.com", True),
        ("bob", "bob@example.com", True),
        ("quiet", "", True),
        ("gone", "gone@example.com", False),
    ]:
        user = django_user_model.objects.create_user(name, email, "pw", is_active=active)
        user.groups.add(managers)
        people[name] = user
    people["dora"] = django_user_model.objects.create_user("dora", "dora@example.com", "pw")
    people["dora"].groups.add(directors)
    people["oscar"] = users["outsider"]
    return people


def links_in(message: Any) -> list[str]:
    """The approval links (their path) in an email's text body."""
    prefix = re.escape(settings.SITE_URL)
    return re.findall(prefix + r"(/app/a/[^/\s]+/)", message.body)
