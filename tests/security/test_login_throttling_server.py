"""The sign-in limits hold on the real embedded server (uvicorn, ASGI, its own process), with
forged X-Forwarded-For headers on every guess."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.processes import manage, project_env, running_server

LIMIT = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("logins")
    env = project_env(
        DATA_DIR=str(data_dir),
        DATABASE_URL=None,
        SECRET_KEY=None,
        API_TOKEN_FAILURE_LIMIT="3/h",
        DJANGO_SUPERUSER_USERNAME=None,
        DJANGO_SUPERUSER_PASSWORD=None,
    )
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")  # the pages' hashed files
    password = re.search(r"with password '([^']+)'", manage(env, "ensure_admin")).group(1)
    with running_server(env, data_dir / "server.log") as running:
        yield running, password


def send(request: urllib.request.Request, opener=None) -> tuple[int, Any, str]:
    """(status, headers (case-insensitive), body)."""
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def login_page(base: str, username: str, password: str, forwarded: str):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    _, _, page = send(urllib.request.Request(f"{base}/app/login/"), opener)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = {"username": username, "password": password, "csrfmiddlewaretoken": token}
    request = urllib.request.Request(
        f"{base}/app/login/",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Referer": base, "X-Forwarded-For": forwarded},
    )
    return send(request, opener)


def test_guessing_through_the_server_is_locked_out_whatever_the_forwarded_header(server):
    running, password = server
    base = running.url
    for n in range(LIMIT - 1):
        status, _, _ = login_page(base, "admin", f"guess-{n}", forwarded=f"203.0.113.{n}")
        assert status == 200  # the form again, "didn't match"
    status, _, page = login_page(base, "admin", password, forwarded="198.51.100.1")
    assert status == 302  # the right password before the limit: signed in, counts reset
    for n in range(LIMIT):
        login_page(base, "admin", f"guess-{n}", forwarded=f"203.0.113.{n}")
    status, _, page = login_page(base, "admin", password, forwarded="198.51.100.2")
    assert status == 429
    assert "Too many failed sign-ins" in page

    token_request = urllib.request.Request(
        f"{base}/api/auth/token/",
        data=json.dumps({"username": "someone", "password": "x"}).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.3"},
    )
    status, headers, body = send(token_request)  # this address is locked out too
    assert status == 429
    assert json.loads(body)["error"]["code"] == "too_many_failed_logins"
    assert headers["Retry-After"] == "900"


def test_wrong_tokens_through_the_server_are_throttled(server):
    running, _ = server

    def me(n: int) -> int:
        request = urllib.request.Request(
            f"{running.url}/api/auth/me/",
            headers={"Authorization": f"Token guess-{n}", "X-Forwarded-For": f"203.0.113.{n}"},
        )
        return send(request)[0]

    assert [me(n) for n in range(4)] == [401, 401, 401, 429]
