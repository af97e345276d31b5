from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission


@pytest.fixture
def managers():
    return Group.objects.get_or_create(name="managers")[0]


@pytest.fixture
def manager(django_user_model, managers):
    """An operator in the managers group, who may follow runs and events."""
    user = django_user_model.objects.create_user(
        "maria", "maria@example.com", "pw", first_name="Maria", last_name="Lopez"
    )
    user.groups.add(managers)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_run", "view_event", "change_run"])
    )
    return user


@pytest.fixture
def expense(workflow_harness, manager):
    from approvals.models import Approval

    workflow_harness.emit(
        "example.expense.submitted", {"amount": 420, "employee": "erin@example.com"}
    )
    return Approval.objects.get(run__workflow__name="example-expense-approval")
