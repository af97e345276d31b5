"""Ten simultaneous decisions against a real server: one wins, nine get 409."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from rest_framework.authtoken.models import Token

from approvals.models import Approval
from events.services import emit
from tests.processes import project_env, running_server, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def decide(url: str, token: str, decision: str) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps({"decision": decision, "comment": "click"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_ten_simultaneous_decisions_make_one_transition(django_user_model, tmp_path):
    managers = Group.objects.create(name="managers")
    tokens = []
    for i in range(10):
        user = django_user_model.objects.create_user(f"manager{i}", password="pw")
        user.groups.add(managers)
        tokens.append(Token.objects.create(user=user).key)

    # The server shares this run's DATA_DIR, so it consumes the queue the test writes to.
    with running_server(project_env(), tmp_path / "server.log") as server:
        with transaction.atomic():
            emit("example.expense.submitted", {"amount": 5, "employee": "e@x.com"})
        approval = wait_for(lambda: Approval.objects.first(), timeout=30)
        url = f"{server.url}/api/approvals/{approval.id}/decide/"
        decisions = ["approve", "reject"] * 5
        with ThreadPoolExecutor(max_workers=10) as pool:
            statuses = list(pool.map(decide, [url] * 10, tokens, decisions))

    assert sorted(statuses) == [200] + [409] * 9
    approval.refresh_from_db()
    assert approval.status in ("approved", "rejected")
    assert approval.decided_by.username.startswith("manager")
