"""`ensure_admin` gives every new installation a way into /admin/."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_creates_the_admin_named_in_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ada")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "s3cret-enough")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "ada@example.com")
    call_command("ensure_admin")
    user = get_user_model().objects.get(username="ada")
    assert user.is_superuser
    assert user.check_password("s3cret-enough")
    assert "s3cret-enough" not in capsys.readouterr().out

    call_command("ensure_admin")  # a second run leaves the account alone
    assert "exists" in capsys.readouterr().out
    assert get_user_model().objects.count() == 1


def test_without_environment_a_demo_admin_is_created_and_its_password_shown_once(
    monkeypatch, capsys
):
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    call_command("ensure_admin")
    out = capsys.readouterr().out
    password = re.search(r"with password '([^']+)'", out).group(1)
    assert get_user_model().objects.get(username="admin").check_password(password)

    call_command("ensure_admin")
    again = capsys.readouterr().out
    assert password not in again
    assert "changepassword" in again


def test_half_configured_environment_is_an_error(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ada")
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="Set both"):
        call_command("ensure_admin")
    assert not get_user_model().objects.exists()
