"""Rules as a definition kind of their own: the API (errors by path, nothing stored on a bad
definition), the admin's editor, rule files loaded by load_workflows, and the pages that show a
rule's state and a derived event's causes."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command

from events.models import Event
from rules.models import Rule, RuleKey

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules"
THRESHOLD = {
    "name": "failed-logins",
    "kind": "threshold",
    "event": "login.failed",
    "correlate": "data.user",
    "count": 2,
    "within": "10m",
    "emit": {"type": "account.suspicious", "data": {"user": "{{ key }}"}},
}


def grant(user, *codenames: str) -> None:
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))


def test_post_get_and_put_a_rule(client, users):
    client.force_login(users["admin"])
    created = client.post("/api/rules/", {"definition": THRESHOLD}, content_type="application/json")
    assert created.status_code == 201, created.json()
    assert created.json()["kind"] == "threshold"
    assert created.json()["source"] == "rule:failed-logins"
    again = client.post("/api/rules/", {"definition": THRESHOLD}, content_type="application/json")
    assert again.status_code == 409
    assert client.get("/api/rules/").json()["results"][0]["name"] == "failed-logins"

    changed = {**THRESHOLD, "count": 5}
    put = client.put(
        "/api/rules/failed-logins/",
        {"definition": changed, "active": False},
        content_type="application/json",
    )
    assert put.status_code == 200
    assert put.json()["changed"] is True
    assert put.json()["active"] is False
    body = client.get("/api/rules/failed-logins/").json()
    assert body["definition"]["count"] == 5
    assert body["state"] == {
        "open_matches": 0,
        "derived_events": 0,
        "last_fired_at": None,
        "last_event": None,
    }


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"kind": "sometimes"}, "kind", "is not one of"),
        ({"within": "soon"}, "within", "is not a duration"),
        ({"count": 0}, "count", "less than the minimum"),
        ({"filter": "event.data.("}, "filter", ""),
        ({"emit": {"type": "login.failed"}}, "emit.type", "it would feed itself"),
        ({"emit": {"type": "x.y", "data": {"u": "{{ trigger.data }}"}}}, "emit.data.u", "provides"),
        ({"steps": []}, "", "Additional properties are not allowed"),
    ],
)
def test_a_bad_definition_is_refused_by_path_and_nothing_is_stored(
    client, users, change, path, words
):
    client.force_login(users["admin"])
    answer = client.post(
        "/api/rules/", {"definition": {**THRESHOLD, **change}}, content_type="application/json"
    )
    assert answer.status_code == 400
    errors = answer.json()["error"]["errors"]
    assert any(e["path"] == path and words in e["message"] for e in errors), errors
    assert not Rule.objects.exists()


def test_the_rule_api_needs_its_permissions(client, users):
    assert client.get("/api/rules/").status_code in (401, 403)
    client.force_login(users["outsider"])
    assert client.get("/api/rules/").status_code == 403
    grant(users["outsider"], "view_rule")
    assert client.get("/api/rules/").status_code == 200
    refused = client.post("/api/rules/", {"definition": THRESHOLD}, content_type="application/json")
    assert refused.status_code == 403
    assert not Rule.objects.exists()


def test_load_workflows_loads_rule_files_and_export_writes_them_back(tmp_path, workflow_harness):
    out = StringIO()
    call_command("load_workflows", str(EXAMPLES), stdout=out)
    assert "unpaid-orders (unpaid-orders.yaml): rule saved" in out.getvalue()
    assert set(Rule.objects.values_list("kind", flat=True)) == {
        "sequence",
        "absence",
        "threshold",
        "aggregate",
        "anomaly",
    }
    again = StringIO()
    call_command("load_workflows", str(EXAMPLES), stdout=again)
    assert "rule saved" not in again.getvalue()

    call_command("export_workflows", str(tmp_path), stdout=StringIO())
    exported = yaml.safe_load((tmp_path / "rules" / "hourly-sales.yaml").read_text())
    assert exported == yaml.safe_load((EXAMPLES / "hourly-sales.yaml").read_text())

    # The examples work: five failed logins make one account.suspicious.
    for _ in range(5):
        workflow_harness.emit("login.failed", {"user": "ada"})
    [event] = Event.objects.filter(type="account.suspicious")
    assert event.data == {"user": "ada", "attempts": 5}


def test_load_workflows_refuses_a_bad_rule_file_and_loads_nothing(tmp_path):
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(THRESHOLD))
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**THRESHOLD, "name": "x", "within": "?"}))
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("load_workflows", str(tmp_path), stdout=StringIO(), stderr=err)
    assert "bad.yaml: within:" in err.getvalue()
    assert not Rule.objects.exists()


def test_rules_page_shows_open_matches_last_fired_and_derived_events(
    client, users, workflow_harness
):
    call_command("load_workflows", str(EXAMPLES), stdout=StringIO())
    workflow_harness.emit("order.created", {"order_id": 7})
    workflow_harness.emit("order.created", {"order_id": 8})
    client.force_login(users["outsider"])
    assert client.get("/app/rules/").status_code == 403
    client.force_login(users["admin"])
    page = client.get("/app/rules/").content.decode()
    assert 'data-rule="unpaid-orders"' in page
    row = page.split('data-rule="unpaid-orders"')[1].split("</tr>")[0]
    assert '<td data-label="Open matches" class="num">2</td>' in row
    assert "never" in row

    workflow_harness.advance_time("31m")
    assert not RuleKey.objects.filter(opened_at__isnull=False).exists()
    row = client.get("/app/rules/").content.decode().split('data-rule="unpaid-orders"')[1]
    row = row.split("</tr>")[0]
    assert "?source=rule%3Aunpaid-orders" in row
    assert ">2</a>" in row  # two derived events
    assert "ago" in row


def test_the_event_page_links_a_derived_event_to_its_causes(client, users, workflow_harness):
    call_command("load_workflows", str(EXAMPLES), stdout=StringIO())
    logins = [workflow_harness.emit("login.failed", {"user": "bo"}) for _ in range(5)]
    derived = Event.objects.get(type="account.suspicious")
    client.force_login(users["admin"])
    page = client.get(f"/app/events/{derived.id}/").content.decode()
    assert "Derived by rule failed-logins from" in page
    for login in logins:
        assert f"/app/events/{login.id}/" in page
    cause_page = client.get(f"/app/events/{logins[0].id}/").content.decode()
    assert "Rules it took part in" in cause_page
    assert f"/app/events/{derived.id}/" in cause_page


def test_the_dashboard_shows_recent_anomalies(client, users, workflow_harness):
    call_command("load_workflows", str(EXAMPLES), stdout=StringIO())
    workflow_harness.advance_time("1m")
    for _ in range(6):
        for _ in range(10):
            workflow_harness.emit("user.signed_up", {})
        workflow_harness.advance_time("1m")
    workflow_harness.advance_time("1m")  # a minute with no signups at all
    client.force_login(users["admin"])
    page = client.get("/app/").content.decode()
    assert "Recent anomalies" in page
    assert "signups.anomaly" in page
    assert "0 against about 10" in page


def test_the_admin_edits_rules_with_the_json_editor_and_validation(client, users):
    client.force_login(users["admin"])
    form = client.get("/admin/rules/rule/add/").content.decode()
    assert "jsoneditor" in form.lower()
    bad = client.post(
        "/admin/rules/rule/add/",
        {"active": "on", "definition": '{"name": "x", "kind": "threshold"}'},
    )
    assert bad.status_code == 200
    assert "is a required property" in bad.content.decode()
    assert not Rule.objects.exists()
    good = client.post(
        "/admin/rules/rule/add/", {"active": "on", "definition": json.dumps(THRESHOLD)}
    )
    assert good.status_code == 302, good.content.decode()[:2000]
    assert Rule.objects.get().definition == THRESHOLD
