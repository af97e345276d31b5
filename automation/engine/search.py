"""Search attributes: a few short key/value pairs on a run that lists can filter on.

A workflow sets them with ``ctx.set_search_attributes({...})`` (a definition with its top-level
``search:``); ``GET /api/runs/?search.customer=acme`` and the runs page filter on them. They live
in ``Run.search``, a JSON object (PostgreSQL: JSONB with a GIN index, queried by containment;
SQLite: JSON text). Values are stored as text, so a filter is an exact match on text.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import QuerySet

from automation.engine.errors import LeaseLost, WorkflowError
from automation.models import Run

if TYPE_CHECKING:
    from automation.engine.context import Context

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_KEYS = 20  # per run
MAX_VALUE = 200  # characters of one value
MAX_FILTERS = 5  # search.<key> parameters of one list request


class SearchAttributeError(ValueError):
    """Attributes or a filter outside the limits; the message names the key."""


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise SearchAttributeError(
            f"search attribute {key!r}: a key is 1-40 lower-case letters, digits and '_', "
            "starting with a letter"
        )
    return key


def as_text(key: str, value: Any) -> str:
    """The stored form of a value: text. Numbers and booleans are written as JSON writes them."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = json.dumps(value)
    elif isinstance(value, str):
        text = value
    else:
        raise SearchAttributeError(
            f"search attribute {key!r}: a value is text, a number or a boolean "
            f"(None removes it), not {type(value).__name__}"
        )
    if len(text) > MAX_VALUE:
        raise SearchAttributeError(
            f"search attribute {key!r}: at most {MAX_VALUE} characters ({len(text)} given)"
        )
    if "\x00" in text:  # PostgreSQL stores no NUL in text or jsonb: say so, not a DataError
        raise SearchAttributeError(f"search attribute {key!r}: a value holds no NUL character")
    return text


def merged(current: dict[str, str], attributes: Any) -> dict[str, str]:
    """``current`` with ``attributes`` applied (None removes a key), checked against the limits."""
    if not isinstance(attributes, dict):
        raise SearchAttributeError("search attributes are an object of key: value")
    result = dict(current)
    for key, value in attributes.items():
        check_key(key)
        if value is None:
            result.pop(key, None)
        else:
            result[key] = as_text(key, value)
    if len(result) > MAX_KEYS:
        raise SearchAttributeError(
            f"a run has at most {MAX_KEYS} search attributes ({len(result)} after this change)"
        )
    return result


def run_set_attributes(ctx: Context, attributes: dict[str, Any]) -> None:
    """Merge ``attributes`` into the run's; write only when they change (a replay writes
    nothing), and only while this worker holds the run."""
    try:
        new = merged(ctx.run.search or {}, attributes)
    except SearchAttributeError as exc:
        raise WorkflowError(str(exc)) from None
    if new == (ctx.run.search or {}):
        return
    held = Run.objects.filter(id=ctx.run.id)
    if ctx.owner is not None:
        held = held.filter(lease_owner=ctx.owner)
    if not held.update(search=new):
        raise LeaseLost(f"run {ctx.run.id} was taken over while setting search attributes")
    ctx.run.search = new


def parse_filters(params: Any) -> dict[str, str]:
    """The ``search.<key>=<value>`` pairs of a query string (a QueryDict), checked."""
    filters: dict[str, str] = {}
    for name in params:
        if not name.startswith("search."):
            continue
        key = check_key(name.removeprefix("search."))
        values = params.getlist(name)
        if len(values) != 1:
            raise SearchAttributeError(f"search.{key}: give it once")
        filters[key] = as_text(key, values[0])
    if len(filters) > MAX_FILTERS:
        raise SearchAttributeError(f"at most {MAX_FILTERS} search.<key> filters per request")
    return filters


def filter_runs(runs: QuerySet[Run], filters: dict[str, str]) -> QuerySet[Run]:
    """Runs whose attributes hold every pair. PostgreSQL answers a containment (``@>``), which
    the GIN index serves; SQLite compares each key's JSON value."""
    if not filters:
        return runs
    if connection.vendor == "postgresql":
        return runs.filter(search__contains=filters)
    for key, value in filters.items():
        runs = runs.filter(**{f"search__{key}": value})
    return runs
