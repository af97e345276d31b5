"""Checking the one permission an API call needs costs one query, not the two that load all of
a user's permissions (pinned so a change that adds queries per request is seen)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def token_client(user) -> Client:
    token, _ = Token.objects.get_or_create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def post_event(client: Client):
    return client.post("/api/events/", json.dumps({"type": "a.b", "data": {}}), "application/json")


def test_posting_an_event_checks_its_permission_in_one_query(
    django_user_model, django_assert_num_queries
):
    poster = django_user_model.objects.create_user("ingest")
    poster.user_permissions.add(Permission.objects.get(codename="add_event"))
    client = token_client(poster)
    post_event(client)  # loads the event schemas, cached for EVENTS_CONFIG_CACHE_SECONDS
    # token and user, the permission, the insert in a savepoint
    with django_assert_num_queries(5):
        assert post_event(client).status_code == 202


def test_a_permission_held_through_a_group_counts(django_user_model):
    group = Group.objects.create(name="integrations")
    group.permissions.add(Permission.objects.get(codename="add_event"))
    poster = django_user_model.objects.create_user("ingest")
    poster.groups.add(group)
    assert post_event(token_client(poster)).status_code == 202


def test_an_inactive_user_or_a_permission_of_another_app_does_not_count(django_user_model):
    other = Permission.objects.filter(codename="add_event").exclude(
        content_type__app_label="events"
    )
    assert not other.exists()  # the check names the app: events.add_event
    user = django_user_model.objects.create_user("ingest")
    user.user_permissions.add(Permission.objects.get(codename="view_event"))
    assert post_event(token_client(user)).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="add_event"))
    user.is_active = False
    user.save()
    assert post_event(token_client(user)).status_code in (401, 403)
