"""XSS: what people and machines send (event data, workflow and step descriptions, approval
titles, comments, run errors) is shown as text, in the operator pages and in the admin, and in
the live toasts, rendered by a real browser (Debian's Chromium driven by Playwright) against a
real server. Every payload, if it ran, would set ``window.__xss``; the test checks that it
never does, that no element the payloads would create exists, and that the payload text is on
the page (so the page did show it)."""

from __future__ import annotations

import json
import time

import pytest

from tests.browsers import chromium, require_chromium
from tests.processes import manage, project_env, start_server, stop

pytestmark = pytest.mark.browser
require_chromium()

PAYLOADS = [
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=2">',
    "'><svg onload=window.__xss=3>",
    "javascript:window.__xss=4",
]
ALL = " ".join(PAYLOADS)
SHOWN = PAYLOADS[0]  # the text each page must show (as text)

# An operator-defined workflow whose descriptions carry the payloads and whose only step fails
# with an error message that quotes them (a model name that is not allowed).
DEFINITION = {
    "name": "xss-probe",
    "description": ALL,
    "trigger": {"event": "xss.probe"},
    "steps": [
        {
            "id": "create",
            "description": ALL,
            "action": "record.create",
            "input": {"model": "{{ trigger.data.note }}", "fields": {}},
        }
    ],
}

SETUP = f"""
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from automation.commands import workflow_definition_save
root = User.objects.create_superuser("root", "root@example.com", "root-pass")
maria = User.objects.create_user("maria", "maria@example.com", "maria-pass")
maria.groups.add(Group.objects.get_or_create(name="managers")[0])
import json
workflow_definition_save(definition=json.loads({json.dumps(DEFINITION)!r}), user=root)
print("TOKEN=" + Token.objects.create(user=root).key)
"""


def wait_for(check, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def expense(server, token: str, employee: str) -> str:
    """Submit an expense whose approval title ends with ``employee``; its approval's id."""
    event = {"type": "example.expense.submitted", "data": {"amount": 7, "employee": employee}}
    server.api(token, "POST", "/api/events/", event)

    def created():
        body = server.api(token, "GET", "/api/approvals/?scope=all&status=pending")
        return [a["id"] for a in body["results"] if employee in a["title"]]

    return wait_for(created, "the approval")[0]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """The embedded server, with every kind of stored text carrying the payloads."""
    data_dir = tmp_path_factory.mktemp("xss")
    env = project_env(DATA_DIR=str(data_dir), DATABASE_URL=None, EXAMPLES="true")
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    token = manage(env, "shell", "-c", SETUP).split("TOKEN=")[1].strip()
    server = start_server(env, data_dir / "server.log")
    try:
        probe = {"type": "xss.probe", "data": {"note": ALL, "url": PAYLOADS[3]}, "subject": ALL}
        event_id = server.api(token, "POST", "/api/events/", probe)["id"]
        failed = wait_for(
            lambda: server.api(token, "GET", "/api/runs/?workflow=xss-probe&status=failed")[
                "results"
            ],
            "the probe's run to fail",
        )
        decided = expense(server, token, ALL)
        vote = {"decision": "reject", "comment": ALL}
        server.api(token, "POST", f"/api/approvals/{decided}/decide/", vote)
        yield {
            "server": server,
            "token": token,
            "event": event_id,
            "run": failed[0]["id"],
            "approval": decided,
        }
    finally:
        stop(server.process)


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser, stored):
    """A signed-in page (the superuser: every /app/ and admin page), with dialogs recorded."""
    context = browser.new_context()
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    base = stored["server"].url
    page.goto(base + "/admin/login/?next=/app/")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "root-pass")
    page.click("[type=submit]")
    page.wait_for_url(base + "/app/")
    yield page
    context.close()


def assert_no_script_ran(page) -> None:
    page.wait_for_timeout(300)  # give an onerror/onload handler its chance to fire
    assert page.evaluate("window.__xss") is None
    assert page.dialogs == []
    injected = page.evaluate(
        """() => document.querySelectorAll(
            'img[src="x"], svg[onload], [onerror], a[href^="javascript:" i]').length"""
    )
    assert injected == 0


def pages(stored) -> list[tuple[str, bool]]:
    """(path, whether it shows a payload) of every page that displays stored text."""
    run, event, approval = stored["run"], stored["event"], stored["approval"]
    return [
        ("/app/", False),
        ("/app/approvals/?scope=all&status=", True),
        (f"/app/approvals/{approval}/", True),
        ("/app/runs/", True),
        (f"/app/runs/{run}/", True),
        ("/app/events/", True),
        (f"/app/events/{event}/", True),
        ("/admin/approvals/approval/", True),
        (f"/admin/approvals/approval/{approval}/change/", True),
        ("/admin/automation/run/", False),
        (f"/admin/automation/run/{run}/change/", True),
        ("/admin/events/event/", False),
        (f"/admin/events/event/{event}/change/", True),
        ("/admin/automation/workflow/", False),
    ]


def test_stored_payloads_are_shown_as_text_and_never_run(stored, page):
    base = stored["server"].url
    for path, shows in pages(stored):
        response = page.goto(base + path)
        assert response is not None
        assert response.status == 200, path
        if shows:
            assert SHOWN in page.inner_text("body"), f"{path} does not show the payload"
        assert_no_script_ran(page)


def test_workflow_and_step_descriptions_are_text_in_the_admin(stored, page):
    base = stored["server"].url
    page.goto(base + "/admin/automation/workflow/")
    page.click("text=xss-probe")
    assert_no_script_ran(page)
    assert SHOWN in page.content().replace("&lt;", "<").replace("&gt;", ">")


def test_a_live_toast_shows_a_new_approvals_title_as_text(stored, page):
    base, token = stored["server"].url, stored["token"]
    page.goto(base + "/app/approvals/")
    page.wait_for_selector("#live-status[data-state=open]")
    marker = f"toast-{time.monotonic_ns()}"
    expense(stored["server"], token, f"{marker} {ALL}")
    page.wait_for_selector(f".toast:has-text('{marker}')")
    assert SHOWN in page.inner_text("#toasts")
    assert_no_script_ran(page)
