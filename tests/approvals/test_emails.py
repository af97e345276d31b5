"""Emails to the assignees: who gets them, what they say, and that mail trouble never hurts a
run."""

from __future__ import annotations

import logging

import pytest
from django.db import transaction
from django.test import override_settings

from approvals.models import Approval
from approvals.services import approval_create
from tests.approvals.conftest import links_in
from tests.processes import free_port

pytestmark = pytest.mark.django_db


def test_the_assignees_with_an_email_are_asked_each_with_their_own_link(
    workflow_harness, team, mailoutbox
):
    run = workflow_harness.start(
        "test-approval-options",
        {"assignees": ["group:managers", "user:dora"], "options": {"timeout": "2d"}},
    )
    # quiet has no address, gone is inactive, oscar is no assignee.
    assert sorted(m.to[0] for m in mailoutbox) == [
        "ann@example.com",
        "bob@example.com",
        "dora@example.com",
    ]
    message = mailoutbox[0]
    assert message.subject == "Approval needed: Pay the invoice?"
    assert "A workflow is waiting for your decision." in message.body
    assert "supplier: ACME" in message.body
    assert "test-approval-options" in message.body
    html = message.alternatives[0].content
    assert "Review and decide" in html
    [link] = links_in(message)
    assert link in html
    assert f"/app/approvals/{Approval.objects.get(run=run).pk}/" in message.body
    assert len({links_in(m)[0] for m in mailoutbox}) == 3  # one link per person


def test_four_eyes_does_not_ask_the_requester(workflow_harness, team, mailoutbox):
    workflow_harness.start(
        "test-approval-options", {"options": {"four_eyes": True}}, started_by=team["ann"]
    )
    assert [m.to for m in mailoutbox] == [["bob@example.com"]]


def test_escalation_emails_the_people_it_goes_to(workflow_harness, team, mailoutbox):
    options = {
        "timeout": "1h",
        "on_timeout": "escalate",
        "escalate_to": ["group:directors"],
        "remind_before": None,
    }
    workflow_harness.start("test-approval-options", {"options": options})
    mailoutbox.clear()
    workflow_harness.advance_time("61m")
    assert [m.to for m in mailoutbox] == [["dora@example.com"]]
    assert mailoutbox[0].subject == "Escalated to you: Pay the invoice?"
    assert "escalated to you" in mailoutbox[0].body


def test_nothing_is_sent_for_an_approval_that_was_rolled_back(
    workflow_harness, team, mailoutbox, django_capture_on_commit_callbacks
):
    run = workflow_harness.start("test-approval-options")
    mailoutbox.clear()

    def ask_then_fail() -> None:
        with transaction.atomic():
            approval_create(run=run, step_id="other", title="Never", assignees=["user:ann"])
            raise RuntimeError("the step's transaction fails after asking")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        ask_then_fail()
    assert mailoutbox == []


def test_a_mail_server_that_is_down_is_logged_and_the_run_waits_as_usual(
    workflow_harness, team, caplog
):
    port = free_port()  # nothing listens there: the connection is refused
    with (
        override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=port,
            EMAIL_USE_TLS=False,
            EMAIL_TIMEOUT=2,
        ),
        caplog.at_level(logging.ERROR, logger="approvals.emails"),
    ):
        run = workflow_harness.start("test-approval-options")
    assert workflow_harness.refresh(run).status == "waiting"
    assert "could not send the requested emails (mail server down?)" in caplog.text
    workflow_harness.decide(run, "ok", "approve", user=team["ann"])
    assert workflow_harness.result(run)["approved"] is True


def test_emails_can_be_turned_off(workflow_harness, team, mailoutbox, settings):
    settings.APPROVAL_EMAILS = False
    workflow_harness.start("test-approval-options", {"options": {"timeout": "2d"}})
    workflow_harness.advance_time("40h")
    assert mailoutbox == []
