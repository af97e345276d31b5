"""The Django-signal bridge: model changes become events.

Rules come from two places: ``SignalBridge`` rows edited in admin, and the ``model_event``
decorator in code. A rule names a model, an action (created, updated, deleted) and optionally
a field whose change (from one value, to another) it waits for. The event is emitted inside the
transaction of the save, so it exists only if that transaction commits.

Example in code::

    @model_event(Invoice, "updated", field="status", from_value="draft", to_value="sent",
                 event_type="invoice.sent")
    def invoice_sent(instance, changes):
        return {"invoice": instance.pk, "amount": str(instance.amount)}  # None: emit nothing
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core import serializers
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, models, transaction

logger = logging.getLogger(__name__)

DataBuilder = Callable[[models.Model, dict[str, dict[str, Any]]], dict[str, Any] | None]


@dataclasses.dataclass(frozen=True)
class BridgeRule:
    model: str  # app_label.modelname, lower-case
    action: str
    event_type: str
    field: str = ""
    from_value: str = ""
    to_value: str = ""
    build: DataBuilder | None = dataclasses.field(default=None, compare=False)

    def matches(self, action: str, changes: dict[str, dict[str, Any]]) -> bool:
        if action != self.action:
            return False
        if not self.field:
            return True
        change = changes.get(self.field)
        if change is None:
            return False
        if self.from_value and _text(change["from"]) != self.from_value:
            return False
        return not self.to_value or _text(change["to"]) == self.to_value


_code_rules: list[BridgeRule] = []
_admin_rules: dict[str, list[BridgeRule]] = {}
_loaded_at = float("-inf")


def model_event(
    model: type[models.Model],
    action: str,
    *,
    event_type: str,
    field: str = "",
    from_value: str = "",
    to_value: str = "",
) -> Callable[[DataBuilder], DataBuilder]:
    """Emit ``event_type`` when ``model`` is created/updated/deleted; the function builds data.

    The decorated function gets ``(instance, changes)`` and returns the event data (a dict), or
    None to emit nothing. ``changes`` maps each watched field to ``{"from", "to"}``.
    """
    if action not in {"created", "updated", "deleted"}:
        raise ValueError(f"action must be created, updated or deleted, not {action!r}")
    if field and action != "updated":
        raise ValueError("a field change only happens on 'updated'")

    def register(build: DataBuilder) -> DataBuilder:
        _code_rules.append(
            BridgeRule(
                model=model._meta.label_lower,
                action=action,
                event_type=event_type,
                field=field,
                from_value=from_value,
                to_value=to_value,
                build=build,
            )
        )
        return build

    return register


def cache_clear(**_: Any) -> None:
    global _loaded_at
    _loaded_at = float("-inf")


def rules_for(label: str) -> list[BridgeRule]:
    admin_rules = _admin_rules_current().get(label, [])
    return admin_rules + [rule for rule in _code_rules if rule.model == label]


def _admin_rules_current() -> dict[str, list[BridgeRule]]:
    global _admin_rules, _loaded_at
    if time.monotonic() - _loaded_at < settings.EVENTS_CONFIG_CACHE_SECONDS:
        return _admin_rules
    from events.models import SignalBridge

    loaded: dict[str, list[BridgeRule]] = {}
    try:
        # A savepoint: before `migrate` created the table, the failure must not break the
        # caller's transaction.
        with transaction.atomic():
            rows = list(SignalBridge.objects.filter(active=True))
    except DatabaseError:
        return {}
    for row in rows:
        rule = BridgeRule(
            model=row.model.lower(),
            action=row.action,
            event_type=row.event_type,
            field=row.field,
            from_value=row.from_value,
            to_value=row.to_value,
        )
        loaded.setdefault(rule.model, []).append(rule)
    _admin_rules, _loaded_at = loaded, time.monotonic()
    return loaded


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def serialise(instance: models.Model) -> dict[str, Any]:
    """The instance as JSON-safe data: model, pk and fields (foreign keys as ids)."""
    (item,) = serializers.serialize("python", [instance])
    return json.loads(json.dumps(item, cls=DjangoJSONEncoder))


# --- Signal receivers (connected in EventsConfig.ready) ---------------------------------------

_SKIPPED_APPS = {"events", "sessions", "contenttypes", "admin", "django_celery_beat"}


def _label(sender: type[models.Model]) -> str | None:
    meta = sender._meta
    if meta.app_label in _SKIPPED_APPS:
        return None
    return meta.label_lower


def on_pre_save(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """Remember the old values of watched fields, so post_save can tell what changed."""
    label = _label(sender)
    if label is None or instance.pk is None or kwargs.get("raw"):
        return
    watched = sorted({rule.field for rule in rules_for(label) if rule.field})
    if not watched:
        return
    attnames = [sender._meta.get_field(name).attname for name in watched]
    old = sender._base_manager.filter(pk=instance.pk).values(*attnames).first()
    if old is not None:
        instance._events_old_values = dict(zip(watched, old.values(), strict=True))


def on_post_save(
    sender: type[models.Model], instance: models.Model, created: bool, **kwargs: Any
) -> None:
    label = _label(sender)
    if label is None or kwargs.get("raw"):
        return
    rules = rules_for(label)
    if not rules:
        return
    changes = {} if created else _changes(sender, instance)
    _emit_matching(rules, "created" if created else "updated", instance, changes)


def on_post_delete(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    label = _label(sender)
    if label is None:
        return
    rules = rules_for(label)
    if rules:
        _emit_matching(rules, "deleted", instance, {})


def _changes(sender: type[models.Model], instance: models.Model) -> dict[str, dict[str, Any]]:
    old_values: dict[str, Any] = getattr(instance, "_events_old_values", {})
    changes = {}
    for name, old in old_values.items():
        new = getattr(instance, sender._meta.get_field(name).attname)
        if new != old:
            changes[name] = {"from": old, "to": new}
    instance._events_old_values = {}
    return changes


def _emit_matching(
    rules: list[BridgeRule], action: str, instance: models.Model, changes: dict[str, Any]
) -> None:
    from events.services import emit

    label = instance._meta.label
    for rule in rules:
        if not rule.matches(action, changes):
            continue
        if rule.build is not None:
            data = rule.build(instance, changes)
            if data is None:
                continue
        else:
            data = {"instance": serialise(instance), "action": action}
            if changes:
                data["changes"] = json.loads(json.dumps(changes, cls=DjangoJSONEncoder))
        emit(
            rule.event_type,
            data,
            source=f"signal:{label}",
            subject=f"{label}:{instance.pk}",
        )
