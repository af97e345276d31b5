"""Workflow diagrams: a declarative workflow drawn from its definition (steps, `if`, parallel
branches, waits, approvals, compensations, children, the failure handler), a code workflow
drawn from the paths its runs took, and a run's state painted on its diagram; on the workflow
page, the run page and in the admin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import Permission

from automation.commands import workflow_definition_save
from automation.models import Run, Workflow

pytestmark = pytest.mark.django_db
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "declarative"

EVERYTHING = {
    "name": "every-shape",
    "trigger": {"event": "shape.requested"},
    "steps": [
        {"id": "first", "action": "log", "input": {"message": "hi"}},
        {
            "id": "maybe",
            "if": "trigger.data.n > 10",
            "action": "log",
            "input": {"message": "big"},
            "compensate": {"action": "log", "input": {"message": "undo"}},
        },
        {
            "id": "fan",
            "parallel": [
                [{"id": "left", "action": "log", "input": {"message": "l"}}],
                [
                    {"id": "right", "action": "log", "input": {"message": "r"}},
                    {"id": "rightSkip", "if": "false", "action": "log", "input": {"message": "x"}},
                ],
            ],
        },
        {"id": "ok", "approval": {"title": "OK?", "assignees": ["group:managers"]}},
        {"id": "reply", "wait_for_event": {"event": "shape.reply", "timeout": "1h"}},
        {"id": "nap", "sleep": "1m"},
        {"id": "kid", "child": {"workflow": "declarative-shipping", "input": {}}},
    ],
    "on_failure": {"action": "log", "input": {"message": "failed"}},
}


def _user(django_user_model, name: str, *codenames: str):
    user = django_user_model.objects.create_user(name, f"{name}@example.com", "pw")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def _load(name: str) -> Workflow:
    definition = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    return workflow_definition_save(definition=definition)[0]


def _nodes(page: str, svg_id: str) -> dict[str, str]:
    """The nodes drawn in the page's diagram: {node id: state}."""
    svg = page.split(f'id="{svg_id}"')[1].split("</svg>")[0]
    return dict(re.findall(r'data-node="([^"]+)" data-state="([^"]+)"', svg))


def _edges(page: str, svg_id: str) -> set[str]:
    svg = page.split(f'id="{svg_id}"')[1].split("</svg>")[0]
    return {edge.replace("&gt;", ">") for edge in re.findall(r'data-edge="([^"]+)"', svg)}


@pytest.fixture
def viewer(django_user_model):
    return _user(django_user_model, "vera", "view_workflow", "view_run")


def test_a_declarative_workflow_is_drawn_with_every_kind_of_step(client, viewer, managers):
    _load("shipping")
    workflow_definition_save(definition=EVERYTHING)
    client.force_login(viewer)
    page = client.get("/app/workflows/every-shape/").content.decode()
    nodes = _nodes(page, "wfg-workflow")
    assert set(nodes) == {
        "start", "first", "maybe", "compensate:maybe", "fan", "left", "right", "rightSkip",
        "fan#join", "ok", "reply", "nap", "kid", "child:kid", "end", "on_failure",
    }  # fmt: skip
    assert set(nodes.values()) == {"none"}  # no run: no state
    edges = _edges(page, "wfg-workflow")
    assert {"start>first", "first>maybe", "maybe>fan", "fan>left", "fan>right", "left>fan#join",
            "right>rightSkip", "rightSkip>fan#join", "fan#join>ok"} <= edges  # fmt: skip
    assert "first>fan" in edges  # the way past `maybe` when its `if` is false
    assert "maybe>compensate:maybe" in edges  # the compensation edge
    assert "kid>child:kid" in edges
    assert 'href="/app/workflows/declarative-shipping/"' in page  # the child opens its page
    # Accessible: a title, a description in words, the condition written on the node.
    # A group, not an image, because of its link: an image's links are hidden from screen
    # readers.
    assert 'role="group" aria-labelledby="wfg-workflow-t wfg-workflow-d"' in page
    assert '<title id="wfg-workflow-t">Diagram of every-shape v1</title>' in page
    assert "maybe (action), if trigger.data.n &gt; 10" in page
    assert "ok (approval)" in page
    assert "reply (wait for event)" in page


def test_a_run_shows_done_skipped_and_waiting_on_its_diagram(
    client, viewer, managers, workflow_harness
):
    _load("shipping")
    workflow_definition_save(definition=EVERYTHING)
    run = workflow_harness.start("every-shape", {"n": 1})
    client.force_login(viewer)
    page = client.get(f"/app/runs/{run.id}/").content.decode()
    nodes = _nodes(page, "wfg-run")
    assert nodes["start"] == "done"
    assert nodes["first"] == "done"
    assert nodes["maybe"] == "skipped"  # its `if` was false
    assert nodes["left"] == nodes["right"] == "done"  # branch steps, from the branch rows
    assert nodes["rightSkip"] == "skipped"
    assert nodes["fan#join"] == "done"
    assert nodes["ok"] == "waiting"  # the approval
    assert nodes["reply"] == nodes["end"] == "none"  # not reached
    assert "approval · waiting" in page  # the state in words, not only in colour
    assert "first&gt;maybe" in page
    assert 'class="wfg-edge e-flow e-taken"' in page
    assert 'aria-label="States on the diagram"' in page


def test_a_failed_saga_shows_its_compensated_steps(client, viewer, workflow_harness):
    _load("trip-booking")
    run = workflow_harness.start("declarative-trip-booking", {"destination": "Oslo", "fail": "car"})
    workflow_harness.run_until_idle()
    run.refresh_from_db()
    assert run.status == "failed"
    client.force_login(viewer)
    nodes = _nodes(client.get(f"/app/runs/{run.id}/").content.decode(), "wfg-run")
    assert nodes["flight"] == nodes["hotel"] == "compensated"
    assert nodes["compensate:flight"] == nodes["compensate:hotel"] == "done"
    assert nodes["car"] == "failed"
    assert nodes["end"] == "failed"
    assert nodes["on_failure"] == "done"


def test_a_code_workflow_is_drawn_from_the_paths_its_runs_took(
    client, viewer, managers, workflow_harness
):
    client.force_login(viewer)
    empty = client.get("/app/workflows/example-invoice-routing/").content.decode()
    assert set(_nodes(empty, "wfg-workflow")) == {"start", "end"}
    assert "it has no run yet" in empty
    workflow_harness.start("example-invoice-routing", {"invoiceId": "a", "total": 50})
    workflow_harness.start("example-invoice-routing", {"invoiceId": "b", "total": 5000})
    workflow_harness.start("example-invoice-routing", {"invoiceId": "c", "total": 9000})
    page = client.get("/app/workflows/example-invoice-routing/").content.decode()
    assert set(_nodes(page, "wfg-workflow")) == {"start", "managerOk", "end"}
    assert {"start>managerOk", "managerOk>end", "start>end"} <= _edges(page, "wfg-workflow")
    assert "2 runs" in page
    assert "1 run<" in page
    assert "journals of its latest 3 runs" in page


def test_a_code_saga_shows_compensations_from_its_journal(client, viewer, workflow_harness):
    run = workflow_harness.start("example-trip-booking", {"destination": "Rome", "fail": "car"})
    workflow_harness.run_until_idle()
    client.force_login(viewer)
    page = client.get(f"/app/runs/{run.id}/").content.decode()
    nodes = _nodes(page, "wfg-run")
    assert nodes["flight"] == nodes["hotel"] == "compensated"
    assert nodes["car"] == "failed"
    assert "hotel>compensate:hotel" in _edges(page, "wfg-run")
    assert 'role="img" aria-labelledby="wfg-run-t wfg-run-d"' in page  # no link in it


def test_the_run_fragment_refetched_live_carries_the_diagram(client, viewer, workflow_harness):
    _load("trip-booking")
    run = workflow_harness.start("declarative-trip-booking", {"destination": "Oslo"})
    client.force_login(viewer)
    fragment = client.get(f"/app/runs/{run.id}/?fragment=1", headers={"HX-Request": "true"})
    body = fragment.content.decode()
    assert "<html" not in body  # only the live part
    assert _nodes(body, "wfg-run")["end"] == "done"


def test_the_admin_shows_the_diagram(admin_client):
    wf = _load("trip-booking")
    page = admin_client.get(f"/admin/automation/workflow/{wf.pk}/change/").content.decode()
    assert 'id="wfg-admin"' in page
    assert "compensate:car" in page
    version = wf.latest_version()
    page = admin_client.get(f"/admin/automation/workflowversion/{version.pk}/change/")
    assert 'id="wfg-admin"' in page.content.decode()


def test_every_example_definition_draws(client, viewer, managers):
    client.force_login(viewer)
    _load("shipping")
    for path in sorted(EXAMPLES.glob("*.yaml")):
        wf = _load(path.stem)
        response = client.get(f"/app/workflows/{wf.name}/")
        assert response.status_code == 200, path.name
        assert {"start", "end"} <= set(_nodes(response.content.decode(), "wfg-workflow"))


def test_a_run_without_the_workflow_permission_gets_no_link_to_it(
    client, django_user_model, workflow_harness
):
    _load("trip-booking")
    run = workflow_harness.start("declarative-trip-booking", {"destination": "Oslo"})
    client.force_login(_user(django_user_model, "rita", "view_run"))
    page = client.get(f"/app/runs/{run.id}/").content.decode()
    assert 'href="/app/workflows/declarative-trip-booking/"' not in page
    assert _nodes(page, "wfg-run")["car"] == "done"
    assert Run.objects.count() == 1


def test_runs_that_took_steps_in_either_order_are_drawn_with_a_way_back():
    from automation.graphs import Graph, Node, render_svg

    graph = Graph(title="loops", source="journals", runs_read=2)
    for node_id in ("start", "a", "b", "end"):
        graph.add(Node(node_id, node_id, "step"))
    for src, dst in [("start", "a"), ("a", "b"), ("b", "end"), ("start", "b"), ("b", "a")]:
        graph.link(src, dst)
    graph.link("a", "end")
    svg = render_svg(graph, "wfg-loop")
    assert svg.count("wfg-edge e-back") == 1  # one of a>b and b>a is drawn going back up
    assert svg.count('class="wfg-node') == 4


def test_a_code_workflows_diagram_reads_a_fixed_number_of_queries(
    client, viewer, workflow_harness, django_assert_max_num_queries
):
    client.force_login(viewer)
    for n in range(3):
        workflow_harness.start("example-trip-booking", {"destination": f"city-{n}"})
    with django_assert_max_num_queries(30) as few:
        client.get("/app/workflows/example-trip-booking/")
    for n in range(12):
        workflow_harness.start("example-trip-booking", {"destination": f"town-{n}"})
    with django_assert_max_num_queries(len(few.captured_queries)):  # not one per run
        page = client.get("/app/workflows/example-trip-booking/").content.decode()
    assert "15 runs" in page  # every run took start > flight


def test_a_code_run_names_its_branches_and_opens_its_child_run(client, viewer, workflow_harness):
    fanout = workflow_harness.start("example-order-fanout", {"orderId": "o-1"})
    parent = workflow_harness.start("example-order-with-fallback", {"amount": 12})
    workflow_harness.run_until_idle()
    client.force_login(viewer)
    page = client.get(f"/app/runs/{fanout.id}/").content.decode()
    assert _nodes(page, "wfg-run")["notify[0]"] == "done"
    assert "notify_warehouse" in page  # the function the branch ran
    page = client.get(f"/app/runs/{parent.id}/").content.decode()
    child = Run.objects.get(parent_run=parent)
    nodes = _nodes(page, "wfg-run")
    assert nodes["pay"] == nodes["child:pay"] == "done"
    assert f'<a href="/app/runs/{child.id}/"><g class="wfg-node k-workflow' in page
    assert "example-payment-child" in page


def test_text_from_a_definition_cannot_inject_markup_into_the_diagram(client, viewer):
    attack = '"</text></svg><script>alert(1)</script>"'
    definition = {
        "name": "sneaky",
        "trigger": {"event": "sneaky.happened"},
        "steps": [
            {
                "id": "s",
                "if": f"trigger.data.x == {attack}",
                "action": "log",
                "input": {"message": "m"},
            },
        ],
    }
    workflow_definition_save(definition=definition)
    client.force_login(viewer)
    page = client.get("/app/workflows/sneaky/").content.decode()
    assert "<script>alert(1)" not in page
    assert "&lt;/text&gt;&lt;/svg&gt;&lt;script&gt;" in page  # shown as text, in the description


def test_recorded_values_are_not_drawn_as_steps(client, viewer, workflow_harness):
    run = workflow_harness.start("test-sleep", {"duration": "2s"})
    workflow_harness.advance_time("2s")
    client.force_login(viewer)
    nodes = _nodes(client.get(f"/app/runs/{run.id}/").content.decode(), "wfg-run")
    assert nodes == {"start": "done", "nap": "done", "end": "done"}  # not ctx.now()'s records
