"""Rules at work: every routed event is shown to the active rules that watch its type (in the
routing transaction, so exactly once: a worker killed mid-way rolls back and the event is routed
again), and the sweep fires rule keys whose deadline or window end has come.

Each rule key's state is a RuleKey row that the worker updates before it reads it, so workers
routing events of one key take turns on that row (a row lock on PostgreSQL, the write lock on
SQLite); a window closes and a derived event is emitted once, whoever gets there first. The
derived event's idempotency key (the rule key and its window) makes a second emission of the
same window a duplicate, not a second event. What each kind does: :mod:`rules.kinds`.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from automation.engine import clock, matching
from automation.lib.db import update_returning
from events.models import Event
from rules import kinds
from rules.models import Rule, RuleKey
from rules.spec import RuleSpec, parse

logger = logging.getLogger(__name__)
BATCH = 500
_specs: dict[str, RuleSpec] = {}  # by checksum: a definition never changes under one


def cache_clear(**kwargs: Any) -> None:
    """Parsed definitions are keyed by checksum and never stale; this only frees memory."""
    _specs.clear()


def _spec(checksum: str, definition: dict[str, Any]) -> RuleSpec:
    found = _specs.get(checksum)
    if found is None:
        found = _specs[checksum] = parse(definition)
    return found


def _active() -> list[tuple[int, RuleSpec]]:
    """The active rules, parsed. Definitions are read only for checksums not seen before: the
    common case reads two short columns per rule."""
    rows = list(Rule.objects.filter(active=True).values_list("id", "checksum"))
    unknown = [rule_id for rule_id, checksum in rows if checksum not in _specs]
    if unknown:
        for checksum, definition in Rule.objects.filter(id__in=unknown).values_list(
            "checksum", "definition"
        ):
            _spec(checksum, definition)
    return [(rule_id, _specs[checksum]) for rule_id, checksum in rows if checksum in _specs]


def event_evaluate(event: Event, problems: list[str]) -> None:
    """Show ``event`` to every active rule watching its type (the routing hook)."""
    watching = [(rule_id, spec) for rule_id, spec in _active() if spec.watches(event.type)]
    if not watching:
        return
    trigger = event.as_trigger()
    now = clock.now()
    for rule_id, spec in watching:
        matched = kinds.matched_steps(spec, event, trigger, problems)
        if not matched:
            continue
        try:
            key = _key(spec, trigger)
        except _NoKey as exc:
            problems.append(f"rule {spec.name}: {exc}")
            continue
        # Only a first step opens a sequence or an absence: other events need an open row.
        row = _lock(rule_id, key, now, create=0 in matched or len(spec.steps) == 1)
        if row is None:
            continue
        state = kinds.KeyState(spec=spec, rule_id=rule_id, row=row, now=now, problems=problems)
        if row.opened_at is not None and row.due_at is not None and row.due_at <= now:
            kinds.on_due(state)  # overdue: the sweep has not come by yet
        kinds.on_event(state, event, trigger, matched)


class _NoKey(Exception):
    pass


def _key(spec: RuleSpec, trigger: dict[str, Any]) -> str:
    if not spec.correlate:
        return ""
    value = matching.lookup(trigger, spec.correlate)
    if value is matching.MISSING or value is None:
        raise _NoKey(f"the event has no {spec.correlate} to correlate on; it was not counted")
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:200]


def _lock(rule_id: int, key: str, now: datetime, *, create: bool = True) -> RuleKey | None:
    """The key's row, updated first so that it is locked until this transaction ends (None if
    it has none and ``create`` is false)."""
    if not create:
        return update_returning(RuleKey.objects.filter(rule_id=rule_id, key=key), updated_at=now)
    return _upsert(rule_id, key, now)


def _upsert(rule_id: int, key: str, now: datetime) -> RuleKey:
    """Create the key's row or touch it, in one statement that locks it either way: INSERT ...
    ON CONFLICT DO UPDATE (PostgreSQL, SQLite 3.35+). A new row is idle until an event opens
    something: the sweep deletes it if none does. Two workers creating one key at once: the
    second waits for the first's row and then updates it, as for any existing key."""
    ops = connection.ops
    table = ops.quote_name(RuleKey._meta.db_table)
    columns = ", ".join(ops.quote_name(field.column) for field in RuleKey._meta.concrete_fields)
    sql = (
        f'INSERT INTO {table} ("rule_id", "key", "state", "updated_at", "due_at") '  # noqa: S608
        """VALUES (%s, %s, '{}', %s, %s) ON CONFLICT ("rule_id", "key") """
        'DO UPDATE SET "updated_at" = excluded."updated_at" '
        f"RETURNING {columns}"
    )
    params = [
        rule_id,
        key,
        ops.adapt_datetimefield_value(now),
        ops.adapt_datetimefield_value(now + kinds.IDLE_GRACE),
    ]
    return next(iter(RuleKey.objects.raw(sql, params)))


def rules_sweep(*, limit: int = BATCH) -> int:
    """Fire rule keys that are due: absence deadlines, window ends, partial matches that ran
    out of time, idle rows to delete (what the periodic sweep calls). One broken key is logged
    and never stops the rest."""
    now = clock.now()
    due = list(
        RuleKey.objects.filter(due_at__lte=now).order_by("due_at").values_list("id", flat=True)
    )[:limit]
    fired = 0
    for row_id in due:
        try:
            fired += _fire_due(row_id)
        except Exception:
            logger.exception("rules sweep: rule key %s failed; continuing with the others", row_id)
    return fired


def _fire_due(row_id: int) -> int:
    with transaction.atomic():
        now = clock.now()
        # Still due: a routing worker may have moved it (or closed it) since it was listed.
        row = update_returning(RuleKey.objects.filter(pk=row_id, due_at__lte=now), updated_at=now)
        if row is None:
            return 0
        rule = Rule.objects.filter(pk=row.rule_id).values_list("active", "checksum", "definition")
        found = rule.first()
        if found is None or not found[0] or row.opened_at is None:
            RuleKey.objects.filter(pk=row.pk).delete()  # idle, or its rule was switched off
            return 0
        spec = _spec(found[1], found[2])
        state = kinds.KeyState(spec=spec, rule_id=row.rule_id, row=row, now=now, problems=[])
        kinds.on_due(state)
        for problem in state.problems:
            logger.warning("rule %s key %r: %s", spec.name, row.key, problem)
        return 1
