"""Search attributes, ctx.patched, a declared approval reminder and an approval decided by a
delegate, on the production path: real Celery workers on Redis with beat, the test database
shared. Then the replay check replays what the workers recorded."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import transaction
from django.test import Client

from approvals.delegations import delegation_create
from approvals.models import Approval, ApprovalEvent
from automation.engine import clock
from automation.models import Run
from tests.processes import celery_worker, wait_for
from tests.production.test_engine_workers import env, finished, ready, start  # noqa: F401

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


def test_a_delegate_decides_a_reminded_approval_that_workers_run_to_the_end(
    env,  # noqa: F811
    tmp_path,
    django_user_model,
):
    ann = django_user_model.objects.create_user("ann", "ann@example.com", "pw")
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "pw")
    bob.user_permissions.add(Permission.objects.get(codename="view_run"))
    delegation_create(
        user=ann,
        delegate=bob,
        starts_at=clock.now() - timedelta(minutes=1),
        ends_at=clock.now() + timedelta(days=1),
    )
    with celery_worker(env, tmp_path / "w.log", concurrency=2, beat=True) as worker:
        ready(worker, tmp_path / "w.log")
        run = start("test.purchase", {"customer": "acme"})
        approval = wait_for(
            lambda: Approval.objects.filter(run=run).first(),
            timeout=30,
            message=f"no approval:\n{(tmp_path / 'w.log').read_text()}",
        )
        # beat's approvals.remind sends the reminder (due a second after the ask)
        wait_for(
            lambda: ApprovalEvent.objects.filter(approval=approval, action="reminded").exists(),
            timeout=30,
            message=f"no reminder:\n{(tmp_path / 'w.log').read_text()}",
        )
        client = Client()
        client.force_login(bob)
        assert client.get("/api/runs/?search.customer=acme").json()["results"][0]["id"] == str(
            run.id
        )
        with transaction.atomic():
            answer = client.post(
                f"/api/approvals/{approval.pk}/decide/",
                {"decision": "approve", "values": {"amount": 70}},
                "application/json",
            )
        assert answer.status_code == 200, answer.content
        run = finished(run)

    assert run.status == "succeeded", run.error
    assert run.output["checked"] is True
    assert run.output["decision"]["decided_by"] == "bob"
    assert run.output["decision"]["on_behalf_of"] == "ann"
    assert run.output["decision"]["values"] == {"amount": 70}
    assert Run.objects.get(id=run.id).search == {"customer": "acme", "stage": "approved"}
    assert run.steps.filter(step_id="patch:budget-check", kind="marker").exists()

    out = StringIO()
    call_command("check_replay", "--workflow", "test-delegated-purchase", stdout=out)
    assert "Checked 1 run(s): 1 replay cleanly, 0 diverge" in out.getvalue()
