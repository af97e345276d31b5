"""Password and token guessing is slowed on every way in: failed sign-ins are counted per
account and per address on /app/login/, /admin/login/ and POST /api/auth/token/ (then 429,
even with the right password, until the lockout ends), wrong API tokens per address, and a
client-written X-Forwarded-For never makes a new address unless proxies are configured."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db

LIMIT = 5  # LOGIN_FAILURE_LIMIT's default


@pytest.fixture
def people(django_user_model):
    make = django_user_model.objects.create_user
    return {
        "olivia": make("olivia", password="olivia-pass"),
        "root": django_user_model.objects.create_superuser("root", password="root-pass"),
        "sam": make("sam", password="sam-pass"),
        "sally": make("sally", password="sally-pass", is_staff=True),
    }


def sign_in(where: str, username: str, password: str, address: str = "127.0.0.1", **headers):
    client = Client(REMOTE_ADDR=address, headers=headers)
    if where == "api":
        return client.post(
            "/api/auth/token/", {"username": username, "password": password}, "application/json"
        )
    return client.post(f"/{where}/login/", {"username": username, "password": password})


def signed_in(where: str, response) -> bool:
    if where == "api":
        return response.status_code == 200 and "token" in response.json()
    return response.status_code == 302 and response.wsgi_request.user.is_authenticated


def assert_locked_out(where: str, response) -> None:
    assert response.status_code == 429, response.content
    if where == "api":
        body = response.json()["error"]
        assert body["code"] == "too_many_failed_logins"
        assert "try again in 15 minutes" in body["message"]
        assert response["Retry-After"] == "900"
    else:
        assert "Too many failed sign-ins" in response.content.decode()
        assert 'name="password"' in response.content.decode()  # the form, to try later


WAYS_IN = ["app", "admin", "api"]


@pytest.mark.parametrize("where", WAYS_IN)
def test_an_account_is_locked_after_repeated_failures_from_any_addresses(where, people):
    user = "root" if where == "admin" else "olivia"
    for n in range(LIMIT - 1):
        assert not signed_in(where, sign_in(where, user, f"guess-{n}", address=f"10.0.0.{n}"))
    assert_locked_out(where, sign_in(where, user, "last-guess", address="10.0.1.1"))
    right = sign_in(where, user, f"{user}-pass", address="10.0.2.2")
    assert_locked_out(where, right)  # even the right password, from a new address
    other = "sally" if where == "admin" else "sam"
    assert signed_in(where, sign_in(where, other, f"{other}-pass", address="10.0.3.3"))


@pytest.mark.parametrize("where", WAYS_IN)
def test_an_address_is_locked_after_failures_for_many_accounts(where, people):
    for n in range(LIMIT):
        sign_in(where, f"user-{n}", "guess", address="192.0.2.7")
    user = "root" if where == "admin" else "sam"
    assert_locked_out(where, sign_in(where, user, f"{user}-pass", address="192.0.2.7"))
    assert signed_in(where, sign_in(where, user, f"{user}-pass", address="192.0.2.8"))


def test_the_lockout_ends_after_LOGIN_LOCKOUT_SECONDS(people):
    for n in range(LIMIT):
        sign_in("app", "olivia", f"guess-{n}")
    assert_locked_out("app", sign_in("app", "olivia", "olivia-pass"))
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(seconds=901))
    assert signed_in("app", sign_in("app", "olivia", "olivia-pass"))


def test_a_client_written_x_forwarded_for_is_not_a_new_address(people):
    for n in range(LIMIT):
        sign_in("api", f"user-{n}", "guess", X_Forwarded_For=f"203.0.113.{n}")
    spoofed = sign_in("api", "sam", "sam-pass", X_Forwarded_For="198.51.100.1")
    assert_locked_out("api", spoofed)


def test_behind_a_configured_proxy_the_address_it_saw_counts(people, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(LIMIT):  # the client writes the left part; the proxy appends the right one
        sign_in("api", f"user-{n}", "guess", X_Forwarded_For=f"203.0.113.{n}, 198.51.100.9")
    assert_locked_out("api", sign_in("api", "sam", "sam-pass", X_Forwarded_For="198.51.100.9"))
    assert signed_in("api", sign_in("api", "sam", "sam-pass", X_Forwarded_For="198.51.100.10"))


def test_the_api_rate_limit_ignores_a_client_written_x_forwarded_for(people, settings):
    settings.API_RATE_LIMIT = (2, 3600)
    statuses = [
        sign_in("api", "olivia", "olivia-pass", X_Forwarded_For=f"203.0.113.{n}").status_code
        for n in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_lockout_can_be_turned_off(people, settings):
    settings.AXES_ENABLED = False  # LOGIN_LOCKOUT=off
    for n in range(LIMIT + 2):
        sign_in("app", "olivia", f"guess-{n}")
    assert signed_in("app", sign_in("app", "olivia", "olivia-pass"))


def test_wrong_api_tokens_are_limited_per_address(people, settings):
    settings.API_TOKEN_FAILURE_LIMIT = (3, 3600)

    def me(key: str, address: str = "127.0.0.1", **headers):
        client = Client(REMOTE_ADDR=address, headers=headers)
        return client.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Token {key}")

    guesses = [me(f"guess-{n}", X_Forwarded_For=f"203.0.113.{n}").status_code for n in range(4)]
    assert guesses == [401, 401, 401, 429]
    refused = me("guess-5")
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused["Retry-After"]) > 0
    assert me("guess-6", address="127.0.0.2").status_code == 401  # another address: its own count


def test_a_valid_token_always_passes_even_from_an_address_past_the_limit(people, settings):
    """Behind a proxy without TRUSTED_PROXY_COUNT everyone shares one address: one client's
    wrong tokens must not lock every other client out."""
    settings.API_TOKEN_FAILURE_LIMIT = (3, 3600)
    token = Token.objects.create(user=people["olivia"]).key
    client = Client(REMOTE_ADDR="10.0.0.1")
    for n in range(5):
        client.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Token guess-{n}")
    assert client.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200


@pytest.mark.parametrize("forwarded", ["1.2.3.4:5678", "not-an-address", "2001:db8::1%eth0x"])
def test_a_malformed_forwarded_address_counts_as_the_connections(forwarded, people, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(LIMIT - 1):
        response = sign_in("api", f"user-{n}", "guess", X_Forwarded_For=forwarded)
        assert response.status_code == 400, response.content  # not a 500 from the database
    sign_in("api", "user-x", "guess", X_Forwarded_For=forwarded)
    assert_locked_out("api", sign_in("api", "sam", "sam-pass", X_Forwarded_For=forwarded))
    assert_locked_out("api", sign_in("api", "sam", "sam-pass"))  # the connection's address


def test_deploy_check_warns_when_https_comes_through_a_proxy_with_no_proxy_count(settings):
    from django.core import checks

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.TRUSTED_PROXY_COUNT = 0
    ids = {m.id for m in checks.run_checks(include_deployment_checks=True)}
    assert "automation.W010" in ids
    settings.TRUSTED_PROXY_COUNT = 1
    ids = {m.id for m in checks.run_checks(include_deployment_checks=True)}
    assert "automation.W010" not in ids


def test_the_counts_never_store_the_guessed_password(people):
    sign_in("app", "olivia", "guess-on-the-page")
    sign_in("api", "olivia", "guess-on-the-api")
    stored = [str(vars(attempt)) for attempt in AccessAttempt.objects.all()]
    assert stored
    assert not [row for row in stored if "guess-on-the" in row]


@pytest.mark.parametrize("where", ["app", "admin"])
def test_signing_in_as_oneself_does_not_wipe_anothers_failures(where, people):
    victim, own = ("root", "sally") if where == "admin" else ("olivia", "sam")
    for n in range(LIMIT - 1):  # one guess short of the lockout, then a sign-in as oneself
        sign_in(where, victim, f"guess-{n}")
    assert signed_in(where, sign_in(where, own, f"{own}-pass"))
    assert_locked_out(where, sign_in(where, victim, "one-more-guess", address="10.9.9.9"))


def test_signing_in_as_oneself_does_not_wipe_the_address_count(people):
    for n in range(LIMIT - 1):
        sign_in("app", f"user-{n}", "guess", address="192.0.2.7")
    assert signed_in("app", sign_in("app", "sam", "sam-pass", address="192.0.2.7"))
    sign_in("app", "user-x", "guess", address="192.0.2.7")
    assert_locked_out("app", sign_in("app", "olivia", "olivia-pass", address="192.0.2.7"))


def test_signing_in_clears_ones_own_earlier_typos(people):
    for n in range(LIMIT - 1):
        sign_in("app", "olivia", f"typo-{n}")
    assert signed_in("app", sign_in("app", "olivia", "olivia-pass"))
    for n in range(LIMIT - 1):  # a fresh allowance, from another address too
        assert not signed_in("app", sign_in("app", "olivia", f"typo-{n}", address="10.0.0.9"))
    assert signed_in("app", sign_in("app", "olivia", "olivia-pass", address="10.0.0.9"))


@pytest.mark.parametrize("where", ["app", "api"])
def test_failures_during_a_lockout_do_not_extend_it(where, people):
    """Otherwise anyone could keep a named account locked forever, one guess per 15 minutes."""
    for n in range(LIMIT):
        sign_in(where, "olivia", f"guess-{n}", address="10.0.0.1")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(seconds=800))
    assert_locked_out(where, sign_in(where, "olivia", "guess-during", address="10.0.0.1"))
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(seconds=101))
    assert signed_in(where, sign_in(where, "olivia", "olivia-pass", address="10.0.0.3"))
