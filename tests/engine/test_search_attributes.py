"""Search attributes: a run says what it is about (customer, order, region) and the runs API
and runs page find it by that."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from automation import workflow
from automation.commands import workflow_definition_save
from automation.definitions import validation
from automation.engine import registry
from automation.models import Run

pytestmark = pytest.mark.django_db


@workflow("test-searchable")
def searchable(ctx, event):
    ctx.set_search_attributes(event.data.get("attrs", {}))
    ctx.sleep("nap", "1h")
    ctx.set_search_attributes(event.data.get("later", {}))
    return {"ok": True}


@pytest.fixture(autouse=True)
def _synced():
    registry.sync_code_workflows(force=True)


@pytest.fixture
def operator(users):
    operator = users["operator"]
    operator.user_permissions.add(Permission.objects.get(codename="view_run"))
    return operator


def ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {run["id"] for run in response.json()["results"]}


def test_a_code_workflow_sets_attributes_the_api_filters_on(client, workflow_harness, operator):
    acme = workflow_harness.start(
        "test-searchable", {"attrs": {"customer": "acme", "amount": 42, "vip": True}}
    )
    globex = workflow_harness.start("test-searchable", {"attrs": {"customer": "globex"}})
    client.force_login(operator)

    assert ids(client.get("/api/runs/?search.customer=acme")) == {str(acme.id)}
    assert ids(client.get("/api/runs/?search.customer=globex")) == {str(globex.id)}
    assert ids(client.get("/api/runs/?search.customer=acme&search.amount=42")) == {str(acme.id)}
    assert ids(client.get("/api/runs/?search.customer=acme&search.vip=true")) == {str(acme.id)}
    assert ids(client.get("/api/runs/?search.customer=acme&search.amount=41")) == set()
    assert ids(client.get("/api/runs/?search.region=eu")) == set()
    body = client.get(f"/api/runs/{acme.id}/").json()
    assert body["search"] == {"customer": "acme", "amount": "42", "vip": "true"}


def test_later_attributes_merge_and_none_removes_one(workflow_harness):
    run = workflow_harness.start(
        "test-searchable",
        {"attrs": {"customer": "acme", "stage": "new"}, "later": {"stage": None, "paid": "yes"}},
    )
    assert Run.objects.get(id=run.id).search == {"customer": "acme", "stage": "new"}
    workflow_harness.run_until_idle()
    assert workflow_harness.result(run) == {"ok": True}
    assert Run.objects.get(id=run.id).search == {"customer": "acme", "paid": "yes"}


@pytest.mark.parametrize(
    ("attrs", "problem"),
    [
        ({"Customer": "acme"}, "lower-case letters"),
        ({"customer": {"id": 1}}, "not dict"),
        ({"customer": "x" * 201}, "at most 200 characters"),
        ({f"k{i}": "v" for i in range(21)}, "at most 20 search attributes"),
    ],
)
def test_attributes_outside_the_limits_fail_the_run_saying_which(workflow_harness, attrs, problem):
    run = workflow_harness.refresh(workflow_harness.start("test-searchable", {"attrs": attrs}))
    assert run.status == "failed"
    assert problem in run.error["message"]
    assert run.search == {}


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("search.Customer=acme", "lower-case letters"),
        ("search.=acme", "lower-case letters"),
        ("search.customer=a&search.customer=b", "give it once"),
        ("&".join(f"search.k{i}=v" for i in range(6)), "at most 5"),
        (f"search.customer={'x' * 201}", "at most 200 characters"),
    ],
)
def test_a_bad_search_filter_is_a_400_naming_it(client, operator, query, problem):
    client.force_login(operator)
    response = client.get(f"/api/runs/?{query}")
    assert response.status_code == 400
    assert problem in response.content.decode()


def test_a_definition_sets_its_search_attributes_from_the_trigger(
    client, workflow_harness, operator
):
    workflow_definition_save(
        definition={
            "name": "searchable-orders",
            "trigger": {"event": "order.searchable"},
            "search": {"customer": "{{ trigger.data.customer }}", "channel": "web"},
            "steps": [{"id": "note", "action": "log", "input": {"message": "hi"}}],
        }
    )
    workflow_harness.emit("order.searchable", {"customer": "acme"})
    workflow_harness.emit("order.searchable", {"customer": "initech"})
    client.force_login(operator)
    found = client.get("/api/runs/?search.customer=acme").json()["results"]
    assert [run["search"] for run in found] == [{"customer": "acme", "channel": "web"}]
    assert found[0]["status"] == "succeeded"


@pytest.mark.parametrize(
    ("search", "path"),
    [
        ({"Customer": "x"}, "search"),
        ({"customer": ["a"]}, "search.customer"),
        ({"customer": "{{ steps.note.output }}"}, "search.customer"),
    ],
)
def test_a_definition_with_bad_search_attributes_is_refused_naming_the_path(search, path):
    errors = validation.validate(
        {
            "name": "bad-search",
            "trigger": {"event": "x.y"},
            "search": search,
            "steps": [{"id": "note", "action": "log", "input": {"message": "hi"}}],
        }
    )
    assert errors
    assert any(error.path.startswith(path) for error in errors), errors


def test_the_runs_page_filters_on_an_attribute_and_refuses_a_bad_one(
    client, workflow_harness, operator
):
    acme = workflow_harness.start("test-searchable", {"attrs": {"customer": "acme"}})
    other = workflow_harness.start("test-searchable", {"attrs": {"customer": "globex"}})
    client.force_login(operator)

    page = client.get("/app/runs/?attr=customer%3Dacme").content.decode()
    assert f'data-run="{acme.id}"' in page
    assert f'data-run="{other.id}"' not in page
    assert 'value="customer=acme"' in page

    refused = client.get("/app/runs/?attr=customer")
    assert refused.status_code == 400
    assert "write key=value" in refused.content.decode()


def test_outsiders_cannot_list_runs_by_attribute(client, users):
    assert client.get("/api/runs/?search.customer=acme").status_code in (401, 403)
    client.force_login(users["outsider"])
    assert client.get("/api/runs/?search.customer=acme").status_code == 403
    assert client.get("/app/runs/?attr=customer%3Dacme").status_code == 403


def test_postgresql_answers_an_attribute_filter_from_the_gin_index():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the GIN index exists on PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'run_search_gin_idx'")
        (definition,) = cursor.fetchone()
        assert "gin (search jsonb_path_ops)" in definition
        cursor.execute("SET enable_seqscan = off")
        sql, params = Run.objects.filter(
            search__contains={"customer": "acme"}
        ).query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = " ".join(row[0] for row in cursor.fetchall())
    assert "run_search_gin_idx" in plan


def test_the_run_page_lists_the_attributes_linking_to_the_runs_that_share_them(
    client, workflow_harness, operator
):
    run = workflow_harness.start("test-searchable", {"attrs": {"customer": "acme & co"}})
    client.force_login(operator)
    page = client.get(f"/app/runs/{run.id}/").content.decode()
    assert "Search attributes" in page
    assert "/app/runs/?attr=customer%3Dacme%20%26%20co" in page
    found = client.get("/app/runs/?attr=customer%3Dacme%20%26%20co").content.decode()
    assert f'data-run="{run.id}"' in found


def test_the_admin_finds_runs_by_key_equals_value(client, workflow_harness, users):
    acme = workflow_harness.start("test-searchable", {"attrs": {"customer": "acme"}})
    other = workflow_harness.start("test-searchable", {"attrs": {"customer": "globex"}})
    client.force_login(users["admin"])
    listing = client.get("/admin/automation/run/?q=customer%3Dacme").content.decode()
    assert str(acme.id) in listing
    assert str(other.id) not in listing
    detail = client.get(f"/admin/automation/run/{acme.id}/change/").content.decode()
    assert "search attributes" in detail.lower()


def test_a_dry_run_shows_the_search_attributes_a_run_would_get():
    from automation.definitions.dryrun import dry_run

    definition = {
        "name": "dry-search",
        "trigger": {"event": "order.dry"},
        "search": {"customer": "{{ trigger.data.customer }}", "big": True},
        "steps": [{"id": "note", "action": "log", "input": {"message": "hi"}}],
    }
    assert dry_run(definition, {"customer": "acme"}).search == {"customer": "acme", "big": "true"}
    refused = dry_run(definition, {"customer": {"id": 1}})
    assert refused.error.startswith("search: search attribute 'customer'")


def test_a_replay_writes_the_attributes_again_only_when_they_change(workflow_harness):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    run = workflow_harness.start("test-searchable", {"attrs": {"customer": "acme"}})
    with CaptureQueriesContext(connection) as queries:
        workflow_harness.run_until_idle()  # replays from the start: customer is set again
    writes = [q["sql"] for q in queries if '"search"' in q["sql"] and "UPDATE" in q["sql"]]
    assert writes == []
    assert workflow_harness.result(run) == {"ok": True}
