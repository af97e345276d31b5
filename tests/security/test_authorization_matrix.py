"""Who may use each URL: every route of the URL configuration, walked with ``get_resolver()``,
must be declared in ``ROUTES`` below (a new route without a declaration fails the suite), and
each declaration is tested from the outside for four people: anonymous, a signed-in user
without permissions, a user with exactly the permission the route needs, and a staff user
without it.

The declarations are the product's access rules; docs/api.md ("Permissions") lists them too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from approvals.models import Approval
from automation.commands import workflow_definition_save
from automation.engine.runs import run_start
from automation.models import Circuit, Run
from events.models import Event, EventSchema
from events.services import emit
from events.webhooks import webhook_endpoint_create
from rules.services import rule_save

pytestmark = pytest.mark.django_db


class Who(StrEnum):
    PUBLIC = "anyone, signed in or not"
    SIGNED_IN = "any signed-in user"
    PERM = "users with the permission"
    STAFF_PERM = "staff users with the permission"
    ASSIGNEE = "the approval's assignees"
    ADMIN = "the Django admin: staff, and the model permission for model pages"


@dataclass(frozen=True)
class Rule:
    who: Who
    method: str = "GET"
    perm: str = ""
    ok: int = 200  # what an allowed user gets
    body: dict[str, Any] | None = None
    refused: int = 403  # what a signed-in user without the right gets
    page: bool = False  # an HTML page: anonymous users are redirected to the login page
    path: Callable[[World], str] | None = None
    also: tuple[str, ...] = ()  # more methods the same rule covers (a form's page: GET, POST)


@dataclass
class World:
    """The objects the routes act on, made afresh for each route."""

    event: Event
    run: Run
    approval: Approval
    extra: dict[str, Any] = field(default_factory=dict)


DEFINITION = {
    "name": "matrix",
    "trigger": {"event": "matrix.started"},
    "steps": [{"id": "hello", "action": "log", "input": {"message": "hi"}}],
}
EVENT = {"type": "matrix.posted", "data": {"n": 1}}
RULE = {
    "name": "matrix-rule",
    "kind": "threshold",
    "event": "matrix.seen",
    "count": 2,
    "within": "1m",
    "emit": {"type": "matrix.twice"},
}
AWAY = {
    "delegate": "tokenuser",
    "starts_at": "2099-01-01T00:00:00Z",
    "ends_at": "2099-01-10T00:00:00Z",
}
AWAY_FORM = {**AWAY, "starts_at": "2099-01-01 00:00", "ends_at": "2099-01-10 00:00"}


def _ev(w: World) -> str:
    return str(w.event.id)


def _schema(w: World) -> str:
    EventSchema.objects.get_or_create(type="matrix.posted", schema={"type": "object"})
    return "/api/schemas/matrix.posted/"


def _run(w: World) -> str:
    return str(w.run.id)


def _ap(w: World) -> str:
    return str(w.approval.id)


P, S, PERM, STAFF, A = Who.PUBLIC, Who.SIGNED_IN, Who.PERM, Who.STAFF_PERM, Who.ASSIGNEE
# fmt: off
ROUTES: dict[str, list[Rule]] = {
    "": [Rule(P)],
    "healthz/?$": [Rule(P)],
    "metrics/?$": [Rule(P)],
    "hooks/(?P<slug>[-\\w]+)/?$": [Rule(P, "POST", body=EVENT, path=lambda w: "/hooks/open/")],
    "admin/": [Rule(Who.ADMIN)],
    # Operator UI
    "app/": [Rule(PERM, perm="automation.view_run", refused=302, page=True)],
    "app/login/": [Rule(P, also=("POST",))],  # the form posts to its page
    "app/logout/": [Rule(P, "POST")],
    "app/approvals/": [Rule(S, page=True)],
    # Out of office: every signed-in user manages their own delegations only (another's: 404)
    "app/approvals/delegation/": [
        Rule(S, page=True),
        Rule(S, "POST", ok=302, page=True, body=AWAY_FORM)],
    "app/approvals/delegation/<int:delegation_id>/end/": [
        Rule(S, "POST", ok=404, page=True, path=lambda w: "/app/approvals/delegation/0/end/")],
    "app/approvals/<uuid:approval_id>/": [
        Rule(A, page=True, path=lambda w: f"/app/approvals/{_ap(w)}/")],
    "app/approvals/<uuid:approval_id>/decide/": [
        Rule(A, "POST", ok=302, page=True, body={"decision": "approve", "comment": ""},
             path=lambda w: f"/app/approvals/{_ap(w)}/decide/")],
    "app/runs/": [Rule(PERM, perm="automation.view_run", page=True)],
    "app/runs/<uuid:run_id>/": [
        Rule(PERM, perm="automation.view_run", page=True, path=lambda w: f"/app/runs/{_run(w)}/")],
    "app/runs/<uuid:run_id>/cancel/": [
        Rule(PERM, "POST", perm="automation.change_run", ok=302, page=True,
             path=lambda w: f"/app/runs/{_run(w)}/cancel/")],
    "app/runs/<uuid:run_id>/retry/": [
        Rule(PERM, "POST", perm="automation.change_run", ok=302, page=True,
             path=lambda w: f"/app/runs/{_run(w)}/retry/")],
    "app/runs/<uuid:run_id>/pause/": [
        Rule(PERM, "POST", perm="automation.change_run", ok=302, page=True,
             path=lambda w: f"/app/runs/{_run(w)}/pause/")],
    "app/runs/<uuid:run_id>/resume/": [
        Rule(PERM, "POST", perm="automation.change_run", ok=302, page=True,
             path=lambda w: f"/app/runs/{_run(w)}/resume/")],
    "app/runs/<uuid:run_id>/rerun/": [  # the confirmation page; posting it reruns
        Rule(PERM, perm="automation.change_run", page=True, also=("POST",),
             path=lambda w: f"/app/runs/{_run(w)}/rerun/")],
    "app/workflows/<slug:name>/pause/": [
        Rule(PERM, "POST", perm="automation.change_workflow", ok=302, page=True,
             path=lambda w: "/app/workflows/matrix/pause/")],
    "app/workflows/<slug:name>/resume/": [
        Rule(PERM, "POST", perm="automation.change_workflow", ok=302, page=True,
             path=lambda w: "/app/workflows/matrix/resume/")],
    "app/runs/<uuid:run_id>/signals/": [
        Rule(PERM, "POST", perm="automation.change_run", ok=302, page=True, body={"name": "go"},
             path=lambda w: f"/app/runs/{_run(w)}/signals/")],
    "app/runs/<uuid:run_id>/queries/<str:name>/": [  # 404: the workflow has no such query
        Rule(PERM, perm="automation.view_run", ok=404, page=True,
             path=lambda w: f"/app/runs/{_run(w)}/queries/progress/")],
    "app/workflows/": [Rule(PERM, perm="automation.view_workflow", page=True)],
    "app/workflows/<slug:name>/": [
        Rule(PERM, perm="automation.view_workflow", page=True,
             path=lambda w: "/app/workflows/matrix/")],
    "app/workflows/<slug:name>/start/": [
        Rule(PERM, "POST", perm="automation.add_run", ok=302, page=True, body={"input": "{}"},
             path=lambda w: "/app/workflows/matrix/start/")],
    "app/workflows/<slug:name>/send-event/": [
        Rule(PERM, "POST", perm="events.add_event", ok=302, page=True,
             body={"type": "matrix.tested", "data": "{}"},
             path=lambda w: "/app/workflows/matrix/send-event/")],
    "app/workflows/<slug:name>/activate/": [
        Rule(PERM, "POST", perm="automation.change_workflow", ok=302, page=True,
             path=lambda w: "/app/workflows/matrix/activate/")],
    "app/workflows/<slug:name>/deactivate/": [
        Rule(PERM, "POST", perm="automation.change_workflow", ok=302, page=True,
             path=lambda w: "/app/workflows/matrix/deactivate/")],
    "app/circuits/": [Rule(PERM, perm="automation.view_circuit", page=True)],
    "app/circuits/<str:key>/close/": [
        Rule(PERM, "POST", perm="automation.change_circuit", ok=302, page=True,
             path=lambda w: "/app/circuits/api.example.com/close/")],
    "app/events/": [Rule(PERM, perm="events.view_event", page=True)],
    "app/rules/": [Rule(PERM, perm="rules.view_rule", page=True)],
    # Runs for automation.view_run, events for events.view_event; either opens the page.
    "app/search/": [
        Rule(PERM, perm="events.view_event", page=True, path=lambda w: "/app/search/?q=order"),
        Rule(PERM, perm="automation.view_run", page=True, path=lambda w: "/app/search/?q=order")],
    "app/events/<uuid:event_id>/": [
        Rule(PERM, perm="events.view_event", page=True, path=lambda w: f"/app/events/{_ev(w)}/")],
    "app/a/<str:token>/": [Rule(P, path=lambda w: "/app/a/not-a-link/")],
    # API: who am I, tokens, the OpenAPI schema (it describes the public surface, no data)
    "api/auth/token/": [Rule(P, "POST", body={"username": "tokenuser", "password": "tok-pass"})],
    "api/auth/me/": [Rule(S)],
    "api/schema/": [Rule(P)],
    "api/docs/": [Rule(P)],
    # API: approvals (the list holds only the user's own)
    "api/approvals/": [Rule(S)],
    "api/approvals/delegations/": [Rule(S), Rule(S, "POST", ok=201, body=AWAY)],
    "api/approvals/delegations/<int:delegation_id>/": [
        Rule(S, "DELETE", ok=404, path=lambda w: "/api/approvals/delegations/0/")],
    "api/approvals/<uuid:approval_id>/": [Rule(A, path=lambda w: f"/api/approvals/{_ap(w)}/")],
    "api/approvals/<uuid:approval_id>/decide/": [
        Rule(A, "POST", body={"decision": "approve"},
             path=lambda w: f"/api/approvals/{_ap(w)}/decide/")],
    # API: runs and workflows
    "api/runs/": [Rule(PERM, perm="automation.view_run")],
    "api/runs/<uuid:run_id>/": [
        Rule(PERM, perm="automation.view_run", path=lambda w: f"/api/runs/{_run(w)}/")],
    "api/runs/<uuid:run_id>/signals/": [
        Rule(PERM, perm="automation.view_run", path=lambda w: f"/api/runs/{_run(w)}/signals/"),
        Rule(PERM, "POST", perm="automation.change_run", ok=202, body={"name": "go"},
             path=lambda w: f"/api/runs/{_run(w)}/signals/")],
    "api/runs/<uuid:run_id>/queries/": [
        Rule(PERM, perm="automation.view_run", path=lambda w: f"/api/runs/{_run(w)}/queries/")],
    "api/runs/<uuid:run_id>/queries/<str:name>/": [  # 404: the workflow has no such query
        Rule(PERM, perm="automation.view_run", ok=404,
             path=lambda w: f"/api/runs/{_run(w)}/queries/progress/")],
    "api/runs/<uuid:run_id>/cancel/": [
        Rule(PERM, "POST", perm="automation.change_run", ok=202,
             path=lambda w: f"/api/runs/{_run(w)}/cancel/")],
    "api/runs/<uuid:run_id>/retry/": [  # 409: the run is not failed, but the user got through
        Rule(PERM, "POST", perm="automation.change_run", ok=409,
             path=lambda w: f"/api/runs/{_run(w)}/retry/")],
    "api/runs/<uuid:run_id>/pause/": [  # the world's run is pending: paused at once
        Rule(PERM, "POST", perm="automation.change_run", ok=202,
             path=lambda w: f"/api/runs/{_run(w)}/pause/")],
    "api/runs/<uuid:run_id>/resume/": [  # 409: the run is not paused
        Rule(PERM, "POST", perm="automation.change_run", ok=409,
             path=lambda w: f"/api/runs/{_run(w)}/resume/")],
    "api/runs/<uuid:run_id>/rerun/": [  # 409: the run is still active
        Rule(PERM, perm="automation.view_run", ok=409,
             path=lambda w: f"/api/runs/{_run(w)}/rerun/?from_step=hello"),
        Rule(PERM, "POST", perm="automation.change_run", ok=409, body={"from_step": "hello"},
             path=lambda w: f"/api/runs/{_run(w)}/rerun/")],
    "api/workflows/<str:name>/pause/": [
        Rule(PERM, "POST", perm="automation.change_workflow",
             path=lambda w: "/api/workflows/matrix/pause/")],
    "api/workflows/<str:name>/resume/": [  # 409: the workflow is not paused
        Rule(PERM, "POST", perm="automation.change_workflow", ok=409,
             path=lambda w: "/api/workflows/matrix/resume/")],
    "api/workflows/": [
        Rule(PERM, perm="automation.view_workflow"),
        Rule(PERM, "POST", perm="automation.add_workflow", ok=201,
             body={"definition": {**DEFINITION, "name": "matrix-new"}}),
    ],
    "api/workflows/schema/": [Rule(S)],
    "api/workflows/<str:name>/": [
        Rule(PERM, perm="automation.view_workflow", path=lambda w: "/api/workflows/matrix/"),
        Rule(PERM, "PUT", perm="automation.change_workflow", body={"definition": DEFINITION},
             path=lambda w: "/api/workflows/matrix/"),
    ],
    "api/workflows/<str:name>/runs/": [
        Rule(PERM, "POST", perm="automation.add_run", ok=202, body={"input": {}},
             path=lambda w: "/api/workflows/matrix/runs/")],
    "api/actions/": [Rule(S)],
    # API: event rules
    "api/rules/": [
        Rule(PERM, perm="rules.view_rule"),
        Rule(PERM, "POST", perm="rules.add_rule", ok=201,
             body={"definition": {**RULE, "name": "matrix-rule-new"}}),
    ],
    "api/rules/<str:name>/": [
        Rule(PERM, perm="rules.view_rule", path=lambda w: "/api/rules/matrix-rule/"),
        Rule(PERM, "PUT", perm="rules.change_rule", body={"definition": RULE},
             path=lambda w: "/api/rules/matrix-rule/"),
    ],
    "api/circuits/": [Rule(PERM, perm="automation.view_circuit")],
    "api/circuits/<str:key>/close/": [
        Rule(PERM, "POST", perm="automation.change_circuit",
             path=lambda w: "/api/circuits/api.example.com/close/")],
    # API: events and webhook endpoints
    "api/events/": [
        Rule(PERM, perm="events.view_event"),
        Rule(PERM, "POST", perm="events.add_event", ok=202, body=EVENT),
    ],
    "api/events/<uuid:event_id>/": [
        Rule(PERM, perm="events.view_event", path=lambda w: f"/api/events/{_ev(w)}/")],
    "api/events/<uuid:event_id>/replay/": [
        Rule(PERM, "POST", perm="events.replay_event", ok=202,
             path=lambda w: f"/api/events/{_ev(w)}/replay/")],
    "api/schemas/": [
        Rule(PERM, perm="events.view_eventschema"),
        Rule(PERM, "POST", perm="events.add_eventschema", ok=201,
             body={"type": "matrix.schema", "schema": {"type": "object"}}),
    ],
    "api/schemas/<str:event_type>/": [
        Rule(PERM, perm="events.view_eventschema", path=lambda w: _schema(w))],
    "api/webhooks/": [
        Rule(STAFF, perm="events.view_webhookendpoint"),
        Rule(STAFF, "POST", perm="events.add_webhookendpoint", ok=201,
             body={"slug": "matrix-new", "scheme": "none"}),
    ],
    "api/webhooks/<slug:slug>/rotate/": [
        Rule(STAFF, "POST", perm="events.change_webhookendpoint", body={},
             path=lambda w: "/api/webhooks/open/rotate/")],
}
# fmt: on


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern).lstrip("^")
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":
                yield route, pattern  # the admin's own rules: tested model by model below
            else:
                yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern


def _routes() -> dict[str, Any]:
    """Each route and its view. A route string that two patterns share would hide the second
    view from the declarations (Django serves the first): that fails here."""
    routes: dict[str, Any] = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        assert route not in routes, f"two views share the route {route!r}: declare one"
        routes[route] = pattern
    return routes


def _drf_methods(callback: Any) -> set[str] | None:
    """The methods a DRF view answers (None for plain Django views)."""
    cls = getattr(callback, "cls", None)
    if cls is None:
        return None
    return {m.upper() for m in cls.http_method_names if hasattr(cls, m)} - {"OPTIONS", "HEAD"}


def test_every_route_declares_who_may_use_it():
    routes = _routes()
    undeclared = sorted(set(routes) - set(ROUTES))
    assert not undeclared, f"declare who may use these routes in ROUTES: {undeclared}"
    assert not sorted(set(ROUTES) - set(routes)), "ROUTES names routes that no longer exist"
    for route, pattern in routes.items():
        methods = _drf_methods(getattr(pattern, "callback", None))
        declared = {rule.method for rule in ROUTES[route]}
        if methods is not None:
            assert methods == declared, f"{route}: declare a rule for each method of {methods}"


def test_every_api_view_names_a_permission_class():
    """An API view that relies on the default (a login) and checks nothing else is a hole
    the matrix would only find if its declaration were wrong: say it explicitly."""
    for route, pattern in _routes().items():
        cls = getattr(getattr(pattern, "callback", None), "cls", None)
        if cls is None or not route.startswith("api/") or route in {"api/schema/", "api/docs/"}:
            continue
        if all(rule.who in (Who.PUBLIC, Who.SIGNED_IN, Who.ASSIGNEE) for rule in ROUTES[route]):
            continue
        names = {p.__name__ for p in cls.permission_classes}
        assert names - {"IsAuthenticated", "AllowAny"}, f"{route} checks only for a login"


# --- The matrix ---------------------------------------------------------------------------


@pytest.fixture
def people(django_user_model):
    make = django_user_model.objects.create_user
    django_user_model.objects.create_user("tokenuser", password="tok-pass")
    return {
        "nobody": make("nobody", password="pw"),
        "exact": make("exact", password="pw"),
        "staff": make("staff", password="pw", is_staff=True),
        "perm_only": make("perm_only", password="pw"),  # the permission, but not staff
    }


@pytest.fixture
def world(people) -> World:
    workflow_definition_save(definition=DEFINITION)
    run = run_start(workflow="matrix", input={})
    approval = Approval.objects.create(run=run, step_id="ok", title="Pay?", assignees=["x"])
    webhook_endpoint_create(slug="open", scheme="none")
    Circuit.objects.create(key="api.example.com", state="open", failures=5)
    rule_save(definition=RULE)
    return World(event=emit("matrix.seen", {"n": 1}), run=run, approval=approval)


def _grant(rule: Rule, user: Any, world: World) -> None:
    if rule.perm:
        app_label, codename = rule.perm.split(".")
        perm = Permission.objects.get(content_type__app_label=app_label, codename=codename)
        user.user_permissions.add(perm)
    if rule.who == Who.STAFF_PERM:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    if rule.who == Who.ASSIGNEE:
        world.approval.assignee_users.add(user)


def _request(rule: Rule, route: str, world: World, user: Any) -> Any:
    client = Client()
    if user is not None:
        client.force_login(user)
    path = rule.path(world) if rule.path else "/" + route.rstrip("$").replace("/?", "/")
    if rule.method == "GET":
        return client.get(path)
    if rule.page:
        return client.post(path, rule.body or {})
    return client.generic(rule.method, path, json.dumps(rule.body or {}), "application/json")


def _expected(rule: Rule, person: str) -> set[int]:
    if rule.who == Who.PUBLIC:
        return set()  # checked below: nobody is refused
    if person == "anonymous":
        return {302} if rule.page else {401}
    if person == "exact" or rule.who == Who.SIGNED_IN:
        return {rule.ok}
    return {rule.refused}


MATRIX = [
    (route, index, rule)
    for route, rules in ROUTES.items()
    for index, rule in enumerate(rules)
    if rule.who != Who.ADMIN
]


@pytest.mark.parametrize(
    ("route", "index", "rule"), MATRIX, ids=[f"{r.method} /{route}" for route, _, r in MATRIX]
)
def test_route_answers_each_person_as_declared(route, index, rule, people, world):
    _grant(rule, people["exact"], world)
    persons = ["anonymous", "nobody", "staff", "exact"]
    if rule.who == Who.STAFF_PERM:  # the permission without staff is refused too
        _grant(Rule(Who.PERM, perm=rule.perm), people["perm_only"], world)
        persons.insert(3, "perm_only")
    got = {}
    for person in persons:  # the allowed one acts last
        user = people.get(person)
        got[person] = _request(rule, route, world, user).status_code
    if rule.who == Who.PUBLIC:
        refusals = {person: s for person, s in got.items() if s in (401, 403)}
        assert not refusals, f"{rule.method} /{route} is public, yet refused {refusals}"
        return
    expected = {person: _expected(rule, person) for person in got}
    wrong = {p: (got[p], sorted(expected[p])) for p in got if got[p] not in expected[p]}
    assert not wrong, f"{rule.method} /{route} ({rule.who}, {rule.perm}): got vs expected {wrong}"


# --- The admin ----------------------------------------------------------------------------

ADMIN_MODELS = sorted(
    (model._meta.app_label, model._meta.model_name) for model in admin.site._registry
)


@pytest.mark.parametrize(("app_label", "model"), ADMIN_MODELS, ids=lambda v: v)
def test_admin_model_pages_need_staff_and_the_model_permission(app_label, model, people):
    path = f"/admin/{app_label}/{model}/"
    perm = Permission.objects.get(content_type__app_label=app_label, codename=f"view_{model}")
    people["exact"].is_staff = True
    people["exact"].save(update_fields=["is_staff"])
    people["exact"].user_permissions.add(perm)
    got = {}
    for person in ("anonymous", "nobody", "staff", "exact"):
        client = Client()
        if person != "anonymous":
            client.force_login(people[person])
        got[person] = client.get(path).status_code
    assert got == {"anonymous": 302, "nobody": 302, "staff": 403, "exact": 200}, path


PLAIN_ROUTES = sorted(
    route
    for route, pattern in _routes().items()
    if route in ROUTES
    and getattr(pattern, "callback", None) is not None
    and _drf_methods(pattern.callback) is None
    and all(rule.who != Who.ADMIN for rule in ROUTES[route])
)


@pytest.mark.parametrize("route", PLAIN_ROUTES)
def test_plain_views_refuse_undeclared_methods_with_405(route, world, django_user_model):
    """A Django view answers only the methods declared for it: one that answered a POST
    where only GET was declared would be an unchecked way in."""
    rules = ROUTES[route]
    # Public pages as a visitor (a signed-in one is sent on from the login page); the rest as
    # a superuser, who gets past every permission check.
    public = rules[0].who == Who.PUBLIC
    user = None if public else django_user_model.objects.create_superuser("root", password="pw")
    declared = {rule.method for rule in rules} | {m for rule in rules for m in rule.also}
    for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - declared):
        response = _request(Rule(rules[0].who, method, path=rules[0].path), route, world, user)
        assert response.status_code == 405, f"{method} /{route}: {response.status_code}"


# --- The admin's own URLs and actions: each checks its permission -------------------------


def _staff(django_user_model, name: str, *perms: str) -> Client:
    user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client


def test_the_workflow_dry_run_needs_the_view_permission(world, django_user_model):
    from automation.models import Workflow

    path = f"/admin/automation/workflow/{Workflow.objects.get(name='matrix').pk}/dry-run/"
    assert _staff(django_user_model, "s1").get(path).status_code == 403
    viewer = _staff(django_user_model, "s2", "automation.view_workflow")
    assert viewer.get(path).status_code == 200


def _act(client: Client, changelist: str, action: str, pk: Any) -> Any:
    return client.post(changelist, {"action": action, "_selected_action": [pk]})


ACTIONS = [
    # changelist, action, what viewing it needs, what the action needs
    ("/admin/events/event/", "replay", "events.view_event", "events.replay_event"),
    ("/admin/automation/run/", "cancel", "automation.view_run", "automation.change_run"),
    ("/admin/automation/workflow/", "deactivate", "automation.view_workflow",
     "automation.change_workflow"),
    ("/admin/events/webhookendpoint/", "rotate_secret", "events.view_webhookendpoint",
     "events.change_webhookendpoint"),
    ("/admin/django_celery_beat/periodictask/", "run_tasks",
     "django_celery_beat.view_periodictask", "django_celery_beat.change_periodictask"),
]  # fmt: skip


def _state(world: World) -> Any:
    from django_celery_beat.models import PeriodicTask

    from automation.models import Workflow
    from events.models import WebhookEndpoint

    world.run.refresh_from_db()
    return (
        Event.objects.count(),
        world.run.cancel_requested,
        Workflow.objects.get(name="matrix").active,
        WebhookEndpoint.objects.get(slug="signed").secret,
        PeriodicTask.objects.get(name="tick").last_run_at,
        Event.objects.filter(type="tick.due").count(),
    )


@pytest.mark.parametrize(("changelist", "action", "view", "needed"), ACTIONS)
def test_admin_actions_need_their_permission(
    changelist, action, view, needed, world, django_user_model
):
    from django_celery_beat.models import PeriodicTask

    from automation.celery import app
    from automation.models import Workflow
    from events.models import WebhookEndpoint
    from events.schedules import schedule_create

    webhook_endpoint_create(slug="signed", scheme="standard_webhooks")
    schedule_create(name="tick", event_type="tick.due", every_seconds=3600)
    targets = {
        "replay": world.event.pk,
        "cancel": world.run.pk,
        "deactivate": Workflow.objects.get(name="matrix").pk,
        "rotate_secret": WebhookEndpoint.objects.get(slug="signed").pk,
        "run_tasks": PeriodicTask.objects.get(name="tick").pk,
    }
    before = _state(world)
    app.conf.task_always_eager = True  # Run selected tasks: the task runs here, at once
    try:
        _act(_staff(django_user_model, "viewer", view), changelist, action, targets[action])
        assert _state(world) == before, f"{action} ran with only {view}"
        _act(_staff(django_user_model, "doer", view, needed), changelist, action, targets[action])
    finally:
        app.conf.task_always_eager = False
    assert _state(world) != before, f"{action} did nothing with {needed}"
