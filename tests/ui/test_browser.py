"""The operator's day in a real browser (Debian's Chromium driven by Playwright) against a real
`manage.py serve`: sign in, see an approval arrive without reloading, approve it, and watch the
run finish on its page without reloading. Screenshots of every page go to screenshots/."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from tests.browsers import chromium, require_chromium
from tests.processes import ROOT, manage, project_env, start_server, stop

SHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "screenshots"))
pytestmark = pytest.mark.browser

require_chromium()

SETUP = """
from django.contrib.auth.models import Group, Permission, User
from rest_framework.authtoken.models import Token
managers, _ = Group.objects.get_or_create(name="managers")
maria = User.objects.create_user("maria", "maria@example.com", "maria-pass",
                                 first_name="Maria", last_name="Lopez")
maria.groups.add(managers)
maria.user_permissions.add(*Permission.objects.filter(
    codename__in=["view_run", "change_run", "view_event", "add_event"]))
print("TOKEN=" + Token.objects.create(user=maria).key)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The embedded server on a fresh data directory, with an operator (maria) and her token."""
    data_dir = tmp_path_factory.mktemp("browser")
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


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _sign_in(page, base: str) -> None:
    page.goto(base + "/app/approvals/")
    assert "/app/login/" in page.url  # anonymous: the login form
    _shot(page, "01-login")
    page.fill("input[name=username]", "maria")
    page.fill("input[name=password]", "maria-pass")
    page.click("button[type=submit]")
    page.wait_for_url(base + "/app/approvals/")


def test_an_operator_approves_a_live_request_and_watches_the_run_finish(server, browser):
    server, token = server
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    inbox = context.new_page()
    _sign_in(inbox, server.url)
    inbox.wait_for_selector("#live-status[data-state=open]")
    inbox.evaluate(
        """() => {
        window.__notReloaded = true;
        window.__toasts = [];
        new MutationObserver((changes) => changes.forEach((c) => c.addedNodes.forEach(
          (n) => window.__toasts.push(n.textContent)))).observe(
          document.getElementById('toasts'), {childList: true});
    }"""
    )
    _shot(inbox, "02-inbox-empty")

    event = server.api(
        token,
        "POST",
        "/api/events/",
        {"type": "example.expense.submitted", "data": {"amount": 1250, "employee": "erin@acme.io"}},
    )
    item = inbox.wait_for_selector("text=Expense of 1250 by erin@acme.io", timeout=45000)
    assert inbox.evaluate("window.__notReloaded") is True  # it arrived without a reload
    assert any("New approval: Expense of 1250" in t for t in inbox.evaluate("window.__toasts"))
    _shot(inbox, "03-inbox-live-arrival")

    run_id = server.api(token, "GET", f"/api/events/{event['id']}/")["runs"][0]["id"]
    run_page = context.new_page()
    run_page.goto(f"{server.url}/app/runs/{run_id}/")
    run_page.wait_for_selector("#live-status[data-state=open]")
    assert run_page.get_attribute("#run-status", "data-status") == "waiting"
    run_page.evaluate(
        """() => {
        window.__notReloaded = true;
        new MutationObserver(() => {
          const s = document.getElementById('run-status');
          const done = s && s.dataset.status === 'succeeded';
          if (done && !window.__shownAt) window.__shownAt = Date.now();
        }).observe(document.body, {subtree: true, childList: true, attributes: true});
    }"""
    )
    _shot(run_page, "04-run-waiting")

    item.click()
    inbox.wait_for_selector("#decide-form")
    _shot(inbox, "05-approval")
    inbox.fill("#id_comment", "Within the quarterly budget.")
    inbox.click("button[value=approve]")
    inbox.wait_for_selector("#approval-status[data-status=approved]", timeout=45000)
    _shot(inbox, "06-approval-decided")

    run_page.wait_for_selector("#run-status[data-status=succeeded]", timeout=45000)
    assert run_page.evaluate("window.__notReloaded") is True
    shown_at = run_page.evaluate("window.__shownAt") / 1000
    run = server.api(token, "GET", f"/api/runs/{run_id}/")
    assert run["status"] == "succeeded"
    last_step = max(s["finished_at"] for s in run["steps"] if s["finished_at"])
    finished = datetime.fromisoformat(last_step.replace("Z", "+00:00")).timestamp()
    lag_ms = (shown_at - finished) * 1000
    (SHOTS / "latency.txt").write_text(f"step finished -> run page shows it: {lag_ms:.0f} ms\n")
    print(f"step finished -> run page shows it: {lag_ms:.0f} ms")
    _shot(run_page, "07-run-succeeded")

    for name, path in [
        ("08-dashboard", "/app/"),
        ("09-runs", "/app/runs/"),
        ("10-events", "/app/events/"),
        ("11-event", f"/app/events/{event['id']}/"),
        ("12-inbox-decided", "/app/approvals/?status=decided"),
    ]:
        run_page.goto(server.url + path)
        _shot(run_page, name)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.add_cookies(context.cookies())
    mobile = phone.new_page()
    mobile.goto(f"{server.url}/app/runs/{run_id}/")
    _shot(mobile, "13-phone-run")
    mobile.goto(server.url + "/app/approvals/?status=decided")
    _shot(mobile, "14-phone-inbox")
    phone.close()
    context.close()


def test_screenshots_directory_is_not_in_git():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "screenshots/x.png"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0 or not shutil.which("git")
