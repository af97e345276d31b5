"""Settings come from the environment; a bad value stops the process naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from automation.lib import env
from tests.processes import ROOT, project_env


def manage(*args: str, **env_overrides: str | None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=project_env(**env_overrides),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("TRUE", True), ("yes", True), ("off", False), ("0", False)]
)
def test_env_bool_accepts_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env.env_bool("SOME_FLAG", default=not expected) is expected


def test_env_bool_rejects_other_values_naming_the_variable(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match=r"SOME_FLAG='maybe' is not a boolean"):
        env.env_bool("SOME_FLAG", default=False)


def test_env_int_checks_type_and_range(monkeypatch):
    monkeypatch.setenv("SOME_PORT", "eighty")
    with pytest.raises(ImproperlyConfigured, match="SOME_PORT='eighty' is not an integer"):
        env.env_int("SOME_PORT", 1)
    monkeypatch.setenv("SOME_PORT", "70000")
    with pytest.raises(ImproperlyConfigured, match="SOME_PORT=70000 is out of range"):
        env.env_int("SOME_PORT", 1, minimum=1, maximum=65535)
    monkeypatch.setenv("SOME_PORT", " 8080 ")
    assert env.env_int("SOME_PORT", 1, minimum=1, maximum=65535) == 8080


def test_env_list_splits_on_commas_and_ignores_blanks(monkeypatch):
    monkeypatch.setenv("SOME_HOSTS", " a.example.com, ,b.example.com ")
    assert env.env_list("SOME_HOSTS", []) == ["a.example.com", "b.example.com"]
    monkeypatch.delenv("SOME_HOSTS")
    assert env.env_list("SOME_HOSTS", ["localhost"]) == ["localhost"]


def test_embedded_secret_key_is_generated_once_and_kept_private(tmp_path):
    first = env.persistent_secret_key(tmp_path)
    assert len(first) >= 50
    assert env.persistent_secret_key(tmp_path) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PORT", "http", "PORT='http' is not an integer"),
        ("PORT", "0", "PORT=0 is out of range"),
        ("DEBUG", "sometimes", "DEBUG='sometimes' is not a boolean"),
        ("DATABASE_URL", "mysql://db/x", "only PostgreSQL and SQLite are supported"),
        ("DATABASE_URL", "nonsense://", "DATABASE_URL='nonsense://' cannot be parsed"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL='loud' is not supported"),
        ("EMBEDDED_CONCURRENCY", "0", "EMBEDDED_CONCURRENCY=0 is out of range"),
        ("REDIS_URL", "http://cache:6379", "REDIS_URL='http://cache:6379' is not a Redis URL"),
    ],
)
def test_bad_setting_fails_at_start_naming_the_variable(variable, value, message):
    result = manage("check", **{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_production_mode_requires_secret_key():
    result = manage("check", CELERY_BROKER_URL="redis://127.0.0.1:6379/15", SECRET_KEY=None)
    assert result.returncode != 0
    assert "SECRET_KEY is required in production mode" in result.stderr


def test_check_deploy_is_clean_under_production_settings():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/15",
        REDIS_URL="redis://127.0.0.1:6379/15",
        SECRET_KEY="a-production-key-" + "k3y" * 20,
        HTTPS=None,  # production mode turns HTTPS hardening on by default
        ALLOWED_HOSTS="automation.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_embedded_defaults_are_not_deploy_ready_and_check_says_why():
    # The embedded default serves plain HTTP on localhost; --deploy must point that out.
    result = manage("check", "--deploy", "--fail-level", "WARNING", HTTPS=None)
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr
