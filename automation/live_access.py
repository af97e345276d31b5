"""Open sockets follow changes to who may hear what, as they happen.

A socket's groups are worked out from its user's groups and permissions (see the consumers).
When those change, the user is deactivated or changes password, the user's sockets are told to
look again (``live.recheck``); when a session signs out, its sockets are closed
(``live.signed_out``). Both are sent after the change commits, so the socket reads the new
state, through the same notice path as everything live (automation.live).

Groups: ``live.user.<id>`` (every socket of a user) and ``live.session.<digest>`` (the sockets
of one signed-in browser; a digest, so that no session key travels through Redis).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model, user_logged_out
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save

from automation.live import publish


def user_group(user_id: Any) -> str:
    return f"live.user.{user_id}"


def session_group(session_key: str) -> str:
    return f"live.session.{hashlib.sha256(session_key.encode()).hexdigest()[:32]}"


def recheck_users(user_ids: Iterable[Any]) -> None:
    groups = sorted({user_group(pk) for pk in user_ids})
    if groups:
        transaction.on_commit(lambda: publish(groups, {"type": "live.recheck"}))


def _on_user_saved(sender: Any, instance: Model, **_: Any) -> None:
    recheck_users([instance.pk])


def _on_signed_out(sender: Any, request: Any, user: Any, **_: Any) -> None:
    key = getattr(request, "session", None) and request.session.session_key
    if key:
        group = session_group(key)
        transaction.on_commit(lambda: publish([group], {"type": "live.signed_out"}))


def _users_of(model: type[Model], pks: Iterable[Any]) -> list[Any]:
    """Users whose access changes with these users, groups or permissions: a permission's
    holders, directly or through a group (only needed when a permission's side is cleared)."""
    User = get_user_model()
    pks = list(pks)
    if issubclass(model, User):
        return pks
    if issubclass(model, Group):
        return list(User.objects.filter(groups__in=pks).values_list("pk", flat=True))
    direct = User.objects.filter(user_permissions__in=pks).values_list("pk", flat=True)
    grouped = User.objects.filter(groups__permissions__in=pks).values_list("pk", flat=True)
    return [*direct, *grouped]


def _on_m2m(sender: Any, instance: Model, action: str, pk_set: Any, model: Any, **_: Any) -> None:
    """User.groups, User.user_permissions and Group.permissions, changed from either side.

    On ``pre_clear`` the pks are not given: the instance's side is read before it is cleared.
    A permission's own side matters only then (after an add or remove, the other side names
    the users or the group).
    """
    if action in ("post_add", "post_remove"):
        touched = [] if isinstance(instance, Permission) else [instance.pk]
        changed = [] if issubclass(model, Permission) else list(pk_set or [])
        recheck_users(_users_of(type(instance), touched) + _users_of(model, changed))
    elif action == "pre_clear":
        recheck_users(_users_of(type(instance), [instance.pk]))


def connect() -> None:
    """Called from AutomationConfig.ready(): the user model is known only then."""
    User = get_user_model()
    post_save.connect(_on_user_saved, sender=User, dispatch_uid="live_access.user_saved")
    post_delete.connect(_on_user_saved, sender=User, dispatch_uid="live_access.user_deleted")
    user_logged_out.connect(_on_signed_out, dispatch_uid="live_access.signed_out")
    for through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(_on_m2m, sender=through, dispatch_uid=f"live_access.{through.__name__}")
