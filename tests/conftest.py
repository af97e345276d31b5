from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from automation.metric_labels import labels

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _services_required() -> bool:
    # In CI a missing service is a failure, never a silent skip.
    return os.environ.get("CI", "").lower() in {"1", "true"} or bool(
        os.environ.get("REQUIRE_SERVICES")
    )


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A real Redis for the production-path tier (database 15, emptied once per run)."""
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = (
            f"Redis at {TEST_REDIS_URL} is not reachable ({exc}); start it or set TEST_REDIS_URL"
        )
        if _services_required():
            pytest.fail(message)
        pytest.skip(message)
    client.flushdb()
    return TEST_REDIS_URL


@pytest.fixture
def users(django_user_model):
    """The cast: an admin, an operator, and an outsider with no rights."""
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "root-pass")
    operator = django_user_model.objects.create_user("olivia", "olivia@example.com", "olivia-pass")
    outsider = django_user_model.objects.create_user("oscar", "oscar@example.com", "oscar-pass")
    return {"admin": admin, "operator": operator, "outsider": outsider}


pytest_plugins = ["automation.testing"]


@pytest.fixture(autouse=True)
def _fresh_metric_labels() -> Iterator[None]:
    """Each test starts with the label cache of a new process (types seen, patterns read)."""
    yield
    labels.reset()
