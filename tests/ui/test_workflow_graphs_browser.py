"""Workflow diagrams in a real Chromium against a real `manage.py serve`: send a test event
from a workflow's page, follow the run it started on its diagram, and watch the diagram change
when the approval is decided, without a reload; on a desktop and on a 360 px phone, where the
diagram shrinks to fit and nothing scrolls sideways. Screenshots go to screenshots/ (not in
git)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browsers import chromium, require_chromium
from tests.processes import ROOT, manage, project_env, start_server, stop, wait_for

SHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "screenshots"))
PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1360, "height": 900}
pytestmark = pytest.mark.browser

require_chromium()

SETUP = """
from django.contrib.auth.models import Group, Permission, User
from rest_framework.authtoken.models import Token
managers, _ = Group.objects.get_or_create(name="managers")
otto = User.objects.create_user("otto", "otto@example.com", "otto-pass")
otto.groups.add(managers)
otto.user_permissions.add(*Permission.objects.filter(
    codename__in=["view_run", "view_event", "add_event", "view_workflow", "change_workflow"]))
print("TOKEN=" + Token.objects.create(user=otto).key)
"""
WORKFLOW = "/app/workflows/declarative-expense-approval/"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("graphs")
    env = project_env(DATA_DIR=str(data_dir), DATABASE_URL=None, EXAMPLES="true")
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    token = manage(env, "shell", "-c", SETUP).split("TOKEN=")[1].strip()
    manage(env, "load_workflows", str(ROOT / "examples" / "declarative"))
    server = start_server(env, data_dir / "server.log")
    yield server, token
    stop(server.process)


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"graphs-{name}.png"), full_page=True)


def _context(browser, base: str, viewport: dict):
    context = browser.new_context(viewport=viewport, is_mobile=viewport is PHONE)
    page = context.new_page()
    page.goto(base + "/app/login/")
    page.fill("input[name=username]", "otto")
    page.fill("input[name=password]", "otto-pass")
    page.click("button[type=submit]")
    page.wait_for_url(base + "/app/")
    return context, page


def _state(page, node: str) -> str:
    return page.get_attribute(f'#wfg-run [data-node="{node}"]', "data-state")


def test_send_a_test_event_and_watch_the_run_on_its_diagram(server, browser):
    server, token = server
    context, page = _context(browser, server.url, DESKTOP)
    page.goto(server.url + WORKFLOW)
    assert page.locator("#wfg-workflow").is_visible()
    assert page.locator('#wfg-workflow [data-node="approve"]').is_visible()
    _shot(page, "01-workflow")
    page.fill("#event-form textarea[name=data]", '{"amount": 1250, "employee": "erin@acme.io"}')
    page.click("#event-form button[type=submit]")
    page.wait_for_url(server.url + "/app/events/*/")
    event_id = page.url.rstrip("/").rsplit("/", 1)[1]

    def first_run():
        runs = server.api(token, "GET", f"/api/events/{event_id}/")["runs"]
        return runs[0]["id"] if runs else None

    run_id = wait_for(first_run, timeout=30, message="the test event started no run")
    page.goto(f"{server.url}/app/runs/{run_id}/")
    page.wait_for_selector("#live-status[data-state=open]")
    page.wait_for_selector('#wfg-run [data-node="approve"][data-state="waiting"]', timeout=30000)
    page.evaluate("() => { window.__notReloaded = true; }")
    _shot(page, "02-run-waiting")

    approval = server.api(token, "GET", "/api/approvals/?status=pending")["results"][0]
    server.api(token, "POST", f"/api/approvals/{approval['id']}/decide/", {"decision": "approve"})
    page.wait_for_selector('#wfg-run [data-node="end"][data-state="done"]', timeout=45000)
    assert page.evaluate("window.__notReloaded") is True  # changed live, not reloaded
    assert _state(page, "approve") == "done"
    assert _state(page, "rejected") == "skipped"
    # The state in words on the node, not only in its colour.
    assert "approval · done" in page.locator('#wfg-run [data-node="approve"]').text_content()
    _shot(page, "03-run-finished")
    context.close()


@pytest.fixture(scope="module")
def code_run(server):
    """A run of a code workflow with parallel branches, finished."""
    server, token = server
    event = server.api(
        token, "POST", "/api/events/", {"type": "example.order.placed", "data": {"orderId": "o-1"}}
    )

    def finished_run():
        runs = server.api(token, "GET", f"/api/events/{event['id']}/")["runs"]
        return runs[0]["id"] if runs and runs[0]["status"] == "succeeded" else None

    return wait_for(finished_run, timeout=45, message="the order fan-out did not finish")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_diagrams_fit_the_screen(server, browser, viewport, code_run):
    server, _ = server
    context, page = _context(browser, server.url, viewport)
    paths = [
        WORKFLOW,
        "/app/workflows/declarative-order-fanout/",
        "/app/workflows/declarative-trip-booking/",
        "/app/workflows/",
        "/app/workflows/example-order-fanout/",
        f"/app/runs/{code_run}/",
    ]
    for index, path in enumerate(paths):
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"{path} is {width} px wide"
        svg = page.locator("svg.wfg")
        if svg.count():
            # It shrinks to the screen, but not below 420 px (its text would be unreadable):
            # a wider one scrolls inside its own box, never the page.
            natural = float(svg.first.get_attribute("width"))
            assert svg.first.bounding_box()["width"] >= min(natural, 420) - 1
            canvas = page.locator(".graph-canvas").first.bounding_box()
            assert canvas["x"] + canvas["width"] <= viewport["width"]
        name = "phone" if viewport is PHONE else "desktop"
        _shot(page, f"{name}-{index}")
    context.close()


def test_a_code_run_is_drawn_from_its_journal_with_its_branches(server, browser, code_run):
    server, _ = server
    context, page = _context(browser, server.url, DESKTOP)
    page.goto(f"{server.url}/app/runs/{code_run}/")
    states = {
        node: page.get_attribute(f'#wfg-run [data-node="{node}"]', "data-state")
        for node in ("start", "notify", "notify[0]", "notify[1]", "notify[2]", "end")
    }
    assert set(states.values()) == {"done"}
    _shot(page, "04-code-run")
    context.close()


def test_the_diagram_links_are_reachable_by_keyboard(server, browser):
    server, _ = server
    context, page = _context(browser, server.url, DESKTOP)
    page.goto(server.url + "/app/workflows/declarative-round-trip/")
    link = page.locator("#wfg-workflow a").first
    href = link.get_attribute("href")
    assert href.startswith("/app/workflows/")
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + href)
    context.close()
