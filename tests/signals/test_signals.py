"""Signals: sent to a run by the API or the run page, kept when sent before the wait, taken once
each, oldest first; refused with nothing stored when the body, the run or its state is wrong."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission

from automation import workflow
from automation.engine import registry
from automation.models import Signal, StepRecord

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    registry.sync_code_workflows(force=True)


@pytest.fixture
def operator(users):
    operator = users["operator"]
    operator.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_run", "change_run"])
    )
    return operator


@pytest.fixture
def send(client, operator, workflow_harness, django_capture_on_commit_callbacks):
    """POST a signal as the operator, then let the harness's worker do what it woke."""
    client.force_login(operator)

    def send(run, name="go", data=None, drain=True, **body):
        payload = {"name": name, **({"data": data} if data is not None else {}), **body}
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                f"/api/runs/{run.id}/signals/", payload, content_type="application/json"
            )
        if drain:
            workflow_harness.drain()
        return response

    return send


def test_a_signal_wakes_the_waiting_run_with_its_data(send, workflow_harness, operator):
    run = workflow_harness.start("test-signal")
    assert workflow_harness.refresh(run).waiting_for == "waiting in 'first' for signal 'go'"
    response = send(run, data={"n": 1})
    assert response.status_code == 202
    body = response.json()
    assert body["name"] == "go"
    assert body["step_id"] == "first"
    assert body["sent_by"] == "olivia"
    first = StepRecord.objects.get(run=run, step_id="first")
    assert first.status == "succeeded"
    assert first.output["data"] == {"n": 1}
    assert first.output["sent_by"] == "olivia"
    assert workflow_harness.refresh(run).status == "waiting"  # now on "second"
    send(run, data={"n": 2})
    run = workflow_harness.refresh(run)
    assert run.status == "succeeded"
    assert run.output == {"timed_out": False, "first": {"n": 1}, "second": {"n": 2}}
    history = LogEntry.objects.filter(object_id=str(run.id)).values_list(
        "change_message", flat=True
    )
    assert sum("Sent the signal 'go'" in message for message in history) == 2


def test_signals_sent_before_the_wait_are_kept_and_taken_once_each_in_order(send, workflow_harness):
    run = workflow_harness.start("test-signal", drain=False)  # pending: not waiting yet
    assert send(run, data={"n": 1}, drain=False).json()["step_id"] == ""  # kept
    assert send(run, data={"n": 2}, drain=False).json()["step_id"] == ""
    send(run, data={"n": 3}, drain=False)
    workflow_harness.drain()
    run = workflow_harness.refresh(run)
    assert run.output == {"timed_out": False, "first": {"n": 1}, "second": {"n": 2}}
    taken = dict(Signal.objects.filter(run=run).values_list("data__n", "step_id"))
    assert taken == {1: "first", 2: "second", 3: ""}  # the third was never waited for


def test_a_signal_wait_times_out_falsy(workflow_harness, send):
    run = workflow_harness.start("test-signal", {"timeout": "10m"})
    workflow_harness.advance_time("11m")
    run = workflow_harness.refresh(run)
    assert run.output == {"timed_out": True}
    response = send(run)  # the run has ended
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_allowed_now"
    assert not Signal.objects.exists()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "has space"}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "go", "data": [1]}, "data: a JSON object"),
        ({"name": "go", "data": "text"}, "data: a JSON object"),
        ({"name": "go", "priority": 1}, "unknown fields priority"),
    ],
)
def test_a_bad_body_is_refused_with_400_and_nothing_stored(
    client, operator, workflow_harness, body, problem
):
    run = workflow_harness.start("test-signal")
    client.force_login(operator)
    response = client.post(f"/api/runs/{run.id}/signals/", body, content_type="application/json")
    assert response.status_code == 400
    assert problem in response.json()["error"]["message"]
    assert not Signal.objects.exists()


def test_a_body_that_is_not_an_object_is_refused(client, operator, workflow_harness):
    run = workflow_harness.start("test-signal")
    client.force_login(operator)
    response = client.post(f"/api/runs/{run.id}/signals/", [1], content_type="application/json")
    assert response.status_code == 400
    assert not Signal.objects.exists()


def test_an_unknown_run_is_404(client, operator):
    client.force_login(operator)
    response = client.post(
        "/api/runs/0190a000-0000-7000-8000-000000000000/signals/",
        {"name": "go"},
        content_type="application/json",
    )
    assert response.status_code == 404
    assert not Signal.objects.exists()


def test_outsiders_cannot_signal(client, users, workflow_harness):
    run = workflow_harness.start("test-signal")
    url = f"/api/runs/{run.id}/signals/"
    assert client.post(url, {"name": "go"}, content_type="application/json").status_code in (
        401,
        403,
    )
    viewer = users["operator"]
    viewer.user_permissions.add(Permission.objects.get(codename="view_run"))
    client.force_login(viewer)  # may see runs, not operate them
    assert client.post(url, {"name": "go"}, content_type="application/json").status_code == 403
    assert not Signal.objects.exists()


# --- the run page ---------------------------------------------------------------------------


def test_the_run_page_sends_a_signal_and_shows_it(
    client, operator, workflow_harness, django_capture_on_commit_callbacks
):
    run = workflow_harness.start("test-signal")
    client.force_login(operator)
    page = client.get(f"/app/runs/{run.id}/").content.decode()
    assert 'id="signal-form"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/app/runs/{run.id}/signals/", {"name": "go", "data": '{"n": 7}'}, follow=True
        )
    assert "Signal go sent, taken by first." in response.content.decode()
    workflow_harness.drain()
    page = client.get(f"/app/runs/{run.id}/").content.decode()
    assert 'data-signal="go"' in page
    assert "taken by first" in page


def test_the_run_page_shows_a_bad_signal_form_again(client, operator, workflow_harness):
    run = workflow_harness.start("test-signal")
    client.force_login(operator)
    response = client.post(f"/app/runs/{run.id}/signals/", {"name": "go", "data": "[1"})
    assert response.status_code == 400
    assert "This is not JSON" in response.content.decode()
    response = client.post(f"/app/runs/{run.id}/signals/", {"name": "bad name", "data": "{}"})
    assert response.status_code == 400
    assert "give the signal&#x27;s name" in response.content.decode()
    assert not Signal.objects.exists()


def test_the_signal_form_is_only_for_operators(client, users, workflow_harness):
    run = workflow_harness.start("test-signal")
    viewer = users["operator"]
    viewer.user_permissions.add(Permission.objects.get(codename="view_run"))
    client.force_login(viewer)
    assert 'id="signal-form"' not in client.get(f"/app/runs/{run.id}/").content.decode()
    assert client.post(f"/app/runs/{run.id}/signals/", {"name": "go"}).status_code == 403
    assert not Signal.objects.exists()


def test_the_admin_lists_signals_read_only(client, users, workflow_harness, send):
    run = workflow_harness.start("test-signal")
    send(run, data={"n": 1})
    client.force_login(users["admin"])
    listing = client.get("/admin/automation/signal/")
    assert listing.status_code == 200
    assert "first" in listing.content.decode()
    signal = Signal.objects.get()
    page = client.get(f"/admin/automation/signal/{signal.id}/change/").content.decode()
    assert "&quot;n&quot;: 1" in page
    assert client.get("/admin/automation/signal/add/").status_code == 403


def test_the_admin_sends_a_signal_to_the_selected_runs(
    client, users, workflow_harness, django_capture_on_commit_callbacks
):
    waiting = workflow_harness.start("test-signal")
    ended = workflow_harness.start("test-signal", {"timeout": "1m"})
    workflow_harness.advance_time("2m")  # ends "ended"; "waiting" waits an hour
    client.force_login(users["admin"])
    chosen = {"action": "send_signal", "_selected_action": [str(waiting.id), str(ended.id)]}
    form = client.post("/admin/automation/run/", chosen)
    assert form.status_code == 200
    assert 'id="send-signal"' in form.content.decode()
    bad = client.post("/admin/automation/run/", {**chosen, "apply": "1", "name": "go", "data": "["})
    assert bad.status_code == 400
    assert not Signal.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(
            "/admin/automation/run/",
            {**chosen, "apply": "1", "name": "go", "data": '{"n": 5}'},
            follow=True,
        )
    assert "Signal go sent to 1 run(s)." in done.content.decode()
    workflow_harness.drain()
    assert StepRecord.objects.get(run=waiting, step_id="first").output["data"] == {"n": 5}
    assert not Signal.objects.filter(run=ended).exists()


def test_the_admin_action_needs_the_permission(client, users, workflow_harness):
    run = workflow_harness.start("test-signal")
    viewer = users["operator"]
    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_run"))
    client.force_login(viewer)
    chosen = {"action": "send_signal", "_selected_action": [str(run.id)], "apply": "1",
              "name": "go", "data": "{}"}  # fmt: skip
    client.post("/admin/automation/run/", chosen)
    assert not Signal.objects.exists()


@workflow("test-signal-deadline", timeout="1m")
def signal_deadline(ctx, event):
    return ctx.wait_for_signal("approval", "go")["data"]


def test_a_retried_run_waits_for_the_signal_again(workflow_harness, send):
    registry.sync_code_workflows(force=True)
    run = workflow_harness.start("test-signal-deadline")
    workflow_harness.advance_time("2m")  # the run's deadline passes during the wait
    run = workflow_harness.refresh(run)
    assert run.status == "failed"
    assert StepRecord.objects.get(run=run, step_id="approval").status == "cancelled"
    assert send(run).status_code == 409  # ended: refused
    run = workflow_harness.retry(run)
    assert workflow_harness.refresh(run).status == "waiting"
    assert send(run, data={"ok": True}).json()["step_id"] == "approval"
    assert workflow_harness.result(run) == {"ok": True}


def test_the_api_lists_a_runs_signals_oldest_first(client, send, workflow_harness, users):
    run = workflow_harness.start("test-signal", drain=False)
    send(run, data={"n": 1}, drain=False)
    send(run, name="other", drain=False)
    workflow_harness.drain()
    listed = client.get(f"/api/runs/{run.id}/signals/").json()["results"]
    assert [(s["name"], s["step_id"], s["sent_by"]) for s in listed] == [
        ("go", "first", "olivia"),
        ("other", "", "olivia"),
    ]
    missing = client.get("/api/runs/0190a000-0000-7000-8000-000000000000/signals/")
    assert missing.status_code == 404
    client.force_login(users["outsider"])
    assert client.get(f"/api/runs/{run.id}/signals/").status_code == 403


def test_the_replay_check_replays_signal_waits_and_waits_for_several(send, workflow_harness):
    from automation.engine.replaycheck import replay_run

    signalled = workflow_harness.start("test-signal")
    send(signalled, data={"n": 1})
    send(signalled, data={"n": 2})
    both = workflow_harness.start("test-wait-all", {"key": "replay"})
    workflow_harness.emit("test.paid", {"key": "replay"})
    workflow_harness.emit("test.voided", {"key": "replay"})
    for run in (signalled, both):
        assert workflow_harness.refresh(run).status == "succeeded"
        assert replay_run(workflow_harness.refresh(run)).result == "ok"
