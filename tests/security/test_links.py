"""Signed approval links (the link in an approval email): it takes its person, signed in, to the
approval once; it is refused when tampered with or forged (400), to anyone else (403), after
use and after expiry (410), with a page that says why."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core import signing

from approvals.links import SALT
from approvals.models import Approval, ApprovalLink
from automation.engine import clock
from tests.approvals import conftest as approvals_cast
from tests.approvals.conftest import links_in

pytestmark = pytest.mark.django_db
team = approvals_cast.team  # the approvals cast (a fixture) and its workflow


@pytest.fixture
def approval(workflow_harness, team):
    workflow_harness.start("test-approval-options", {"assignees": ["user:ann", "user:bob"]})
    return Approval.objects.get()


@pytest.fixture
def ann_link(approval, mailoutbox):
    [message] = [m for m in mailoutbox if m.to == ["ann@example.com"]]
    [link] = links_in(message)
    return link


def test_the_link_takes_its_person_to_the_approval_once(client, approval, ann_link, team):
    client.force_login(team["ann"])
    response = client.get(ann_link)
    assert response.status_code == 302
    assert response["Location"] == f"/app/approvals/{approval.pk}/"
    assert "Pay the invoice?" in client.get(response["Location"]).content.decode()

    again = client.get(ann_link)
    assert again.status_code == 410
    assert "This link was used already" in again.content.decode()


def test_a_forwarded_link_is_refused_and_stays_usable_by_its_person(
    client, approval, ann_link, team
):
    client.force_login(team["bob"])  # an assignee too, but the link was sent to ann
    response = client.get(ann_link)
    assert response.status_code == 403
    page = response.content.decode()
    assert "This link was sent to someone else" in page
    assert 'href="/app/approvals/"' in page  # the way on: their own inbox
    client.force_login(team["oscar"])
    assert client.get(ann_link).status_code == 403

    client.force_login(team["ann"])
    assert client.get(ann_link).status_code == 302


def test_signed_out_people_are_sent_to_the_login_page_and_back(client, ann_link):
    response = client.get(ann_link)
    assert response.status_code == 302
    assert response["Location"] == f"{settings.LOGIN_URL}?next={quote(ann_link)}"
    assert not ApprovalLink.objects.filter(used_at__isnull=False).exists()  # not spent


def test_an_expired_link_is_refused(client, ann_link, team):
    clock.advance(timedelta(seconds=settings.APPROVAL_LINK_MAX_AGE + 1))
    client.force_login(team["ann"])
    response = client.get(ann_link)
    assert response.status_code == 410
    assert "This link has expired" in response.content.decode()


class _SignedLongAgo(signing.TimestampSigner):
    def timestamp(self) -> str:
        return signing.b62_encode(int(time.time()) - settings.APPROVAL_LINK_MAX_AGE - 60)


def test_a_link_signed_too_long_ago_is_refused_even_signed_out(client, approval):
    link = ApprovalLink.objects.filter(approval=approval).first()
    token = _SignedLongAgo(salt=SALT).sign_object({"link": str(link.pk)})
    response = client.get(f"/app/a/{token}/")
    assert response.status_code == 410
    assert "This link has expired" in response.content.decode()


@pytest.mark.parametrize("tamper", ["swap-last-character", "other-salt", "garbage"])
def test_a_changed_or_forged_link_is_400(client, approval, ann_link, team, tamper):
    token = ann_link.split("/")[3]
    if tamper == "swap-last-character":
        token = token[:-1] + ("A" if token[-1] != "A" else "B")
    elif tamper == "other-salt":
        link = ApprovalLink.objects.first()
        token = signing.dumps({"link": str(link.pk)}, salt="something-else")
    else:
        token = "not-a-token"
    client.force_login(team["ann"])
    response = client.get(f"/app/a/{token}/")
    assert response.status_code == 400
    assert "This link is not valid" in response.content.decode()


def test_only_get_is_allowed(client, ann_link, team):
    client.force_login(team["ann"])
    assert client.post(ann_link).status_code == 405
    assert ApprovalLink.objects.filter(used_at__isnull=False).count() == 0


def test_admins_see_who_was_sent_a_link_and_whether_it_was_used(client, approval, ann_link, team):
    client.force_login(team["ann"])
    client.get(ann_link)
    client.force_login(type(team["ann"]).objects.get(username="root"))
    page = client.get(f"/admin/approvals/approval/{approval.pk}/change/").content.decode()
    assert "Approval links" in page
    assert "bob" in page  # emailed, link not used
