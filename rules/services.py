"""Writes on rules: save a definition (create or change), switch a rule on or off."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from automation.commands import definition_checksum
from automation.definitions.validation import DefinitionError, InvalidDefinition
from rules import spec
from rules.models import Rule, RuleKey


def rule_save(
    *, definition: Any, name: str | None = None, active: bool | None = None
) -> tuple[Rule, bool]:
    """Validate and save a rule definition; returns (rule, whether the definition changed).

    ``name``: the rule being edited (a definition cannot rename it). A changed definition
    starts the rule afresh: its open partial matches and windows are dropped, since they were
    counted under the old one. An unchanged definition changes nothing (safe on every deploy).
    Raises InvalidDefinition naming each path."""
    spec.check(definition)
    if name is not None and definition["name"] != name:
        raise InvalidDefinition(
            [DefinitionError("name", f"this rule is {name!r}; names cannot change")]
        )
    checksum = definition_checksum(definition)
    with transaction.atomic():
        rule, created = Rule.objects.select_for_update().get_or_create(
            name=definition["name"],
            defaults={"kind": definition["kind"], "definition": definition, "checksum": checksum},
        )
        changed = created or rule.checksum != checksum
        if changed and not created:
            RuleKey.objects.filter(rule=rule).delete()
        rule.kind = definition["kind"]
        rule.definition = definition
        rule.checksum = checksum
        rule.description = definition.get("description", "")
        if active is not None:
            rule.active = active
        rule.updated_at = timezone.now()
        rule.save()
    return rule, changed
