"""`make run`'s embedded topology: one process serves HTTP and runs background work.

These tests do what `make run` does on a fresh machine (a new data directory, migrate,
ensure_admin, serve) and then use the server as a person and as the operating system would.
"""

from __future__ import annotations

import http.cookiejar
import re
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.processes import manage, project_env, start_server, stop, wait_for


def _fresh_env(data_dir: Path) -> dict[str, str]:
    return project_env(
        DATA_DIR=str(data_dir),
        DATABASE_URL=None,
        SECRET_KEY=None,
        HEARTBEAT_INTERVAL="1",
        DJANGO_SUPERUSER_USERNAME=None,
        DJANGO_SUPERUSER_PASSWORD=None,
    )


def _queued(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "queue").glob("*.msg"))


@pytest.fixture(scope="module")
def installation(tmp_path_factory) -> tuple[dict[str, str], str]:
    """A fresh data directory, migrated, with the demo admin; returns (env, admin password)."""
    data_dir = tmp_path_factory.mktemp("embedded")
    env = _fresh_env(data_dir)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")  # as `make run` does
    out = manage(env, "ensure_admin")
    password = re.search(r"with password '([^']+)'", out).group(1)
    return env, password


def _login(base: str, username: str, password: str) -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/admin/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": token,
            "next": "/admin/",
        }
    ).encode()
    opener.open(
        urllib.request.Request(f"{base}/admin/login/", data=form, headers={"Referer": base})
    )
    return opener


def test_one_process_serves_healthz_admin_and_runs_scheduled_work(installation, tmp_path):
    env, password = installation
    server = start_server(env, tmp_path / "server.log")
    try:
        status, _ = server.get("/healthz")
        assert status == 200
        # The embedded scheduler sends a heartbeat job every second and the embedded worker
        # runs it in the same process: /healthz shows when it last ran.
        wait_for(
            lambda: b'"background": {"status": "ok"' in server.get("/healthz")[1],
            message="the embedded worker never ran the scheduled heartbeat",
        )
        status, page = server.get("/admin/login/")
        assert status == 200
        assert b'name="username"' in page
        assert b'name="password"' in page

        admin_home = _login(server.url, "admin", password).open(f"{server.url}/admin/").read()
        assert b"Site administration" in admin_home
    finally:
        stop(server.process)


def test_ctrl_c_stops_cleanly_and_a_restart_runs_work_queued_meanwhile(installation, tmp_path):
    env, _ = installation
    data_dir = Path(env["DATA_DIR"])
    server = start_server(env, tmp_path / "first.log")
    assert server.interrupt() == 0
    assert "Stopped." in server.output()

    # While the server is down another process enqueues work the ordinary Celery way.
    manage(env, "shell", "-v0", "-c", "from automation.tasks import heartbeat; heartbeat.delay()")
    assert len(_queued(data_dir)) == 1

    server = start_server(env, tmp_path / "second.log")
    try:
        wait_for(lambda: not _queued(data_dir), message="queued work was not picked up")
    finally:
        assert server.interrupt() == 0
