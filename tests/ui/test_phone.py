"""Every /app/ page at a 360 px wide phone in a real Chromium: nothing scrolls sideways, tables
become cards and "Sign out" stays on screen; at a desktop width the sidebar layout is kept.

The widths measured are written to screenshots/phone-widths.txt (kept out of git)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from django.urls import get_resolver

from tests.browsers import chromium, require_chromium
from tests.processes import ROOT, manage, project_env, start_server, stop

SHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "screenshots"))
PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1360, "height": 900}
pytestmark = pytest.mark.browser

require_chromium()

SETUP = """
from django.contrib.auth.models import Group, Permission, User
from rest_framework.authtoken.models import Token
managers, _ = Group.objects.get_or_create(name="managers")
# A long name and every permission: the widest navigation and header the UI can have.
ops = User.objects.create_user("operator-with-a-long-name", "ops@example.com", "ops-pass",
                               first_name="Maximiliana", last_name="Vanderbilt-Oppenheimer",
                               is_staff=True)
ops.groups.add(managers)
ops.user_permissions.add(*Permission.objects.filter(
    codename__in=["view_run", "change_run", "view_event", "add_event", "view_workflow",
                  "add_run", "change_workflow", "view_rule", "add_rule"]))
print("TOKEN=" + Token.objects.create(user=ops).key)
"""

#: The app's URL names that answer a page to a GET (the others only take POSTs).
POST_ONLY = {
    "logout",
    "decide",
    "run-cancel",
    "run-retry",
    "run-signal",
    "workflow-start",
    "circuit-close",
    "delegation-end",
    "workflow-event",
    "workflow-activate",
    "workflow-deactivate",
}
POST_ONLY |= {"run-pause", "run-resume", "workflow-pause", "workflow-resume"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("phone")
    env = project_env(DATA_DIR=str(data_dir), DATABASE_URL=None, EXAMPLES="true")
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    token = manage(env, "shell", "-c", SETUP).split("TOKEN=")[1].strip()
    server = start_server(env, data_dir / "server.log")
    yield server, token
    stop(server.process)


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def pages(server):
    """Every /app/ page by URL name, with data in it: an expense waiting for approval (a long
    correlation id and subject), and one decided."""
    server, token = server
    rule = {  # fires on each expense: a derived event with causes, a rule that has fired
        "name": "expenses-by-employee-with-a-long-rule-name",
        "kind": "threshold",
        "event": "example.expense.submitted",
        "correlate": "data.employee",
        "count": 1,
        "within": "1h",
        "emit": {"type": "example.expense.counted"},
    }
    server.api(token, "POST", "/api/rules/", {"definition": rule})
    events = [
        server.api(
            token,
            "POST",
            "/api/events/",
            {
                "type": "example.expense.submitted",
                "subject": "expense-report-with-a-rather-long-subject-2026-12-04",
                "correlation_id": "order-2026-12-04-0000000000000000000000000000000000000001",
                "data": {"amount": amount, "employee": "erin.with.a.long.address@example.com"},
            },
        )
        for amount in (1250, 90)
    ]
    runs = [_first_run(server, token, e["id"]) for e in events]
    approvals = server.api(token, "GET", "/api/approvals/?status=pending")["results"]
    pickup = server.api(
        token,
        "POST",
        "/api/events/",
        {"type": "example.return.requested", "data": {"order": "r-1"}},
    )
    return {
        "run-query": f"/app/runs/{_first_run(server, token, pickup['id'])}/queries/where/",
        "dashboard": "/app/",
        "inbox": "/app/approvals/?scope=all&status=",
        "approval": f"/app/approvals/{approvals[0]['id']}/",
        "runs": "/app/runs/",
        "run": f"/app/runs/{runs[0]}/",
        "run-rerun": f"/app/runs/{runs[0]}/rerun/",
        "workflows": "/app/workflows/",
        "workflow": "/app/workflows/example-expense-approval/",
        "circuits": "/app/circuits/",
        "delegation": "/app/approvals/delegation/",
        "events": "/app/events/",
        "search": "/app/search/?q=order-2026-12-04-0000000000000000000000000000000000000001",
        "event": f"/app/events/{events[0]['id']}/",
        "rules": "/app/rules/",
        "not-found": f"/app/runs/{uuid.uuid4()}/",
    }


def _first_run(server, token: str, event_id: str) -> str:
    from tests.processes import wait_for

    def run_id():
        runs = server.api(token, "GET", f"/api/events/{event_id}/")["runs"]
        return runs[0]["id"] if runs else None

    return wait_for(run_id, timeout=30, message="the event started no run")


def _sign_in(context, base: str) -> None:
    page = context.new_page()
    page.goto(base + "/app/login/")
    page.fill("input[name=username]", "operator-with-a-long-name")
    page.fill("input[name=password]", "ops-pass")
    page.click("button[type=submit]")
    page.wait_for_url(base + "/app/")
    page.close()


def test_every_app_page_is_covered(pages):
    names = {
        p.name
        for p in get_resolver().url_patterns
        if getattr(p, "app_name", None) == "app"
        for p in p.url_patterns
    }
    assert names - POST_ONLY - {"login"} <= set(pages)


def _width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_no_page_scrolls_sideways_on_a_phone(server, browser, pages):
    server, _ = server
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    page = context.new_page()
    widths, sign_out_off_screen = {}, []
    page.goto(server.url + "/app/login/")
    widths["login"] = _width(page)
    _sign_in(context, server.url)
    for name, path in pages.items():
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        widths[name] = _width(page)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"phone-{name}.png"), full_page=True)
        sign_out = page.get_by_role("button", name="Sign out")
        box = sign_out.bounding_box()
        if not (sign_out.is_visible() and box and box["x"] + box["width"] <= PHONE["width"]):
            sign_out_off_screen.append(name)
    context.close()
    report = "\n".join(f"{name}: {w}" for name, w in widths.items())
    (SHOTS / "phone-widths.txt").write_text(f"scrollWidth at {PHONE['width']} px\n{report}\n")
    print(report)
    assert {n: w for n, w in widths.items() if w > PHONE["width"]} == {}
    assert sign_out_off_screen == []


def test_tables_become_cards_on_a_phone_and_stay_tables_on_a_desktop(server, browser, pages):
    server, _ = server
    for viewport, expected in [(PHONE, "block"), (DESKTOP, "table-row")]:
        context = browser.new_context(viewport=viewport)
        _sign_in(context, server.url)
        page = context.new_page()
        page.goto(server.url + pages["runs"])
        row = page.locator("table.table tbody tr").first
        assert row.evaluate("r => getComputedStyle(r).display") == expected
        # Each cell says what it is on a phone, where the column headings are hidden.
        assert row.locator("td").first.get_attribute("data-label") == "Status"
        context.close()


def test_the_desktop_keeps_its_sidebar(server, browser, pages):
    server, _ = server
    context = browser.new_context(viewport=DESKTOP)
    _sign_in(context, server.url)
    page = context.new_page()
    for path in pages.values():
        page.goto(server.url + path)
        nav = page.locator("nav.nav")
        assert nav.evaluate("n => getComputedStyle(n).flexDirection") == "column"
        assert page.locator(".topbar").bounding_box()["height"] >= DESKTOP["height"] - 1
        assert _width(page) <= DESKTOP["width"]
    context.close()


def test_the_copy_button_copies_the_whole_id_behind_the_short_one(server, browser, pages):
    server, _ = server
    context = browser.new_context(viewport=PHONE)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    _sign_in(context, server.url)
    page = context.new_page()
    page.goto(server.url + pages["runs"])
    link = page.locator("table.table tbody tr").first.locator(".id a")
    whole = link.get_attribute("title")
    assert whole.split("-")[-1].startswith(link.inner_text())
    page.locator("table.table tbody tr").first.locator("button.copy").click()
    page.wait_for_selector("button.copy[data-copied]")
    assert page.evaluate("navigator.clipboard.readText()") == whole
    context.close()
