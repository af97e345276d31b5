"""Machines authenticate with DRF tokens from day one; browsers with the session."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def test_token_is_issued_for_valid_credentials_and_authenticates(client, users):
    response = client.post(
        "/api/auth/token/",
        {"username": "olivia", "password": "olivia-pass"},
        content_type="application/json",
    )
    assert response.status_code == 200
    token = response.json()["token"]

    me = client.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Token {token}")
    assert me.status_code == 200
    assert me.json() == {"username": "olivia", "is_staff": False, "groups": [], "auth": "token"}


def test_token_request_with_a_wrong_password_is_refused(client, users):
    response = client.post(
        "/api/auth/token/",
        {"username": "olivia", "password": "wrong"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid", "message": "Unable to log in with provided credentials."}
    }
    assert not Token.objects.exists()


def test_api_without_credentials_answers_401_with_the_scheme(client):
    response = client.get("/api/auth/me/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["error"]["code"] == "not_authenticated"


def test_api_rejects_an_unknown_token(client):
    response = client.get("/api/auth/me/", HTTP_AUTHORIZATION="Token not-a-real-token")
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "authentication_failed", "message": "Invalid token."}
    }


def test_browser_session_authenticates_the_api(client, users):
    client.force_login(users["admin"])
    response = client.get("/api/auth/me/")
    assert response.json()["auth"] == "session"
    assert response.json()["is_staff"] is True


def test_drf_create_token_command_makes_a_working_token(client, users, capsys):
    call_command("drf_create_token", "oscar")
    key = Token.objects.get(user=users["outsider"]).key
    assert key in capsys.readouterr().out
    assert client.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
