"""The circuits page in a real browser (Debian's Chromium) against a real `manage.py serve`: an
operator sees an open circuit, closes it with "Close now", and a viewer gets no button."""

from __future__ import annotations

import pytest

from tests.browsers import chromium, require_chromium
from tests.processes import manage, project_env, start_server, stop

pytestmark = pytest.mark.browser

require_chromium()

SETUP = """
from datetime import timedelta
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from automation.models import Circuit
now = timezone.now()
Circuit.objects.create(key="api.example.com", state="open", failures=5, window_start=now,
                       opened_at=now, retry_at=now + timedelta(minutes=10))
olga = User.objects.create_user("olga", password="olga-pass")
olga.user_permissions.add(*Permission.objects.filter(
    codename__in=["view_circuit", "change_circuit"]))
vera = User.objects.create_user("vera", password="vera-pass")
vera.user_permissions.add(Permission.objects.get(codename="view_circuit"))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("circuits-browser")
    env = project_env(DATA_DIR=str(data_dir), DATABASE_URL=None)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    manage(env, "shell", "-c", SETUP)
    server = start_server(env, data_dir / "server.log")
    yield server
    stop(server.process)


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def _sign_in(browser, base: str, username: str):
    page = browser.new_context().new_page()
    page.goto(base + "/app/circuits/")
    assert "/app/login/" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"{username}-pass")
    page.click("button[type=submit]")
    page.wait_for_url(base + "/app/circuits/")
    return page


def test_a_viewer_sees_the_open_circuit_without_a_close_button(server, browser):
    page = _sign_in(browser, server.url, "vera")
    row = page.locator("tr", has_text="api.example.com")
    assert "Open" in row.inner_text()
    assert page.get_by_role("button", name="Close now").count() == 0


def test_an_operator_closes_an_open_circuit(server, browser):
    page = _sign_in(browser, server.url, "olga")
    assert page.get_by_role("link", name="Circuits").count() == 1
    row = page.locator("tr", has_text="api.example.com")
    assert "Open" in row.inner_text()
    row.get_by_role("button", name="Close now").click()
    page.wait_for_selector("text=Circuit api.example.com closed")
    row = page.locator("tr", has_text="api.example.com")
    assert "Closed" in row.inner_text()
    assert page.get_by_role("button", name="Close now").count() == 0
