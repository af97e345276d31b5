"""403, 404 and 500 in the operator UI: styled pages inside the app shell with a way back; the
API keeps answering JSON; a refusal is logged as one line, without a traceback."""

from __future__ import annotations

import logging
import uuid

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _page(response) -> str:
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


def test_a_refused_page_is_styled_in_the_shell_with_a_way_back(client, users):
    client.force_login(users["outsider"])
    response = client.get("/app/runs/")
    assert response.status_code == 403
    page = _page(response)
    assert "You can't open this page" in page
    assert "/static/app/app.css" in page or "app/app.css" in page
    assert 'class="shell"' in page  # inside the app shell: the nav is there
    assert 'href="/app/approvals/"' in page  # what the outsider may open is still offered
    assert 'href="/app/runs/">All runs' in page
    assert "Sign in as someone else" in page


def test_a_refusal_is_logged_without_a_traceback(client, users, caplog):
    client.force_login(users["outsider"])
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get("/app/events/").status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert [r.getMessage() for r in records] == ["Forbidden (Permission denied): /app/events/"]
    assert records[0].exc_info is None
    assert "Traceback" not in caplog.text


def test_an_unknown_run_is_a_styled_404_that_leads_back_to_the_runs(client, manager):
    client.force_login(manager)
    response = client.get(f"/app/runs/{uuid.uuid4()}/")
    assert response.status_code == 404
    page = _page(response)
    assert "Nothing is here" in page
    assert 'class="shell"' in page
    assert 'href="/app/runs/">All runs' in page
    assert 'href="/app/">Back to the start' in page


def test_an_unknown_page_signed_out_is_a_card_with_a_way_back(client):
    response = client.get("/app/no-such-page/")
    assert response.status_code == 404
    page = _page(response)
    assert "Nothing is here" in page
    assert 'class="shell"' not in page  # no nav for a stranger
    assert 'href="/app/">Back to the start' in page


def test_a_crash_is_a_styled_500_with_a_way_back(manager, monkeypatch, caplog):
    from automation import selectors

    def broken(**filters):
        raise RuntimeError("the runs list broke")

    monkeypatch.setattr(selectors, "runs_filtered", broken)
    client = Client(raise_request_exception=False)
    client.force_login(manager)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get("/app/runs/")
    assert response.status_code == 500
    page = _page(response)
    assert "Something went wrong on our side" in page
    assert "app/app.css" in page
    assert 'href="/app/">Back to the start' in page
    assert "the runs list broke" not in page  # nothing internal is shown
    assert "Traceback" in caplog.text  # a crash, unlike a refusal, keeps its traceback


def test_the_api_keeps_answering_json(client, users, rf):
    from django.core.exceptions import PermissionDenied

    from automation.api.errors import json_403

    assert client.get("/api/no-such-thing/").json()["error"]["code"] == "not_found"
    client.force_login(users["outsider"])
    refused = client.get("/api/runs/")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    # A plain Django view under /api/ that raises: the same JSON shape.
    answer = json_403(rf.get("/api/anything/"), PermissionDenied("Ask for the run viewer role."))
    assert answer.status_code == 403
    assert answer["Content-Type"] == "application/json"
    assert b'"message": "Ask for the run viewer role."' in answer.content
