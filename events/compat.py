"""Compatibility between two versions of an event type's JSON Schema.

Confluent Schema Registry's definitions, against the previous version:

- ``backward``: the new schema accepts every event the previous one accepted (consumers on the
  new shape read old events). Broken by *narrowing* changes: a field became required, a type or
  an enum lost values, additional properties were closed, a property was removed from a closed
  object.
- ``forward``: the previous schema accepts every event the new one accepts (consumers still on
  the old shape read new events). Broken by *widening* changes, the mirror images.
- ``full``: both. ``none``: anything goes.

The comparison walks ``properties`` (nested objects) and ``items`` (arrays), and compares
``required``, ``type``, ``enum``/``const`` and ``additionalProperties``. Events are assumed to
carry only the properties their schema names, so adding an optional property is compatible both
ways (as adding an optional field with a default is in Avro). Keywords it does not compare
(``minimum``, ``pattern``, ``$ref``, ``oneOf`` ...) are treated as unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Change", "changes", "problems"]

NARROWS = "narrows"  # the new schema refuses something the old one accepted: breaks backward
WIDENS = "widens"  # the new schema accepts something the old one refused: breaks forward

_BREAKS = {
    "none": (),
    "backward": (NARROWS,),
    "forward": (WIDENS,),
    "full": (NARROWS, WIDENS),
}


@dataclass(frozen=True)
class Change:
    """One difference between two versions: where (``data.total``), which way, in words."""

    path: str
    direction: str
    message: str

    def describe(self, mode: str) -> str:
        return f"{mode}: {self.message}"


def problems(old: dict[str, Any], new: dict[str, Any], mode: str) -> list[str]:
    """The changes from ``old`` to ``new`` that ``mode`` forbids, each worded with the mode,
    the path and the rule (``backward: field `data.total` became required``); empty when the
    new version may be saved."""
    breaking = _BREAKS[mode]
    return [c.describe(mode) for c in changes(old, new) if c.direction in breaking]


def changes(old: Any, new: Any, path: str = "data") -> list[Change]:
    """Every difference the compatibility modes care about, narrowing and widening."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return _boolean_schema(old, new, path)
    found = _types(old, new, path) + _enums(old, new, path)
    found += _required(old, new, path) + _properties(old, new, path)
    if "items" in old or "items" in new:
        found += changes(old.get("items", True), new.get("items", True), f"{path}[]")
    return found


def _boolean_schema(old: Any, new: Any, path: str) -> list[Change]:
    # true / false are schemas too (anything / nothing); a dict is somewhere in between.
    if old == new:
        return []
    if old is True or new is False:
        return [Change(path, NARROWS, f"`{path}` accepts fewer values than before")]
    return [Change(path, WIDENS, f"`{path}` accepts more values than before")]


def _type_set(schema: dict[str, Any]) -> set[str] | None:
    declared = schema.get("type")
    if declared is None:
        return None  # any type
    names = {declared} if isinstance(declared, str) else set(declared)
    if "number" in names:
        names.add("integer")  # every integer is a number
    return names


def _types(old: dict[str, Any], new: dict[str, Any], path: str) -> list[Change]:
    before, after = _type_set(old), _type_set(new)
    if before == after:
        return []
    found = []
    if after is not None and (before is None or before - after):
        lost = "any type" if before is None else ", ".join(sorted(before - after))
        found.append(
            Change(path, NARROWS, f"field `{path}` no longer accepts {lost} (type {_show(new)})")
        )
    if before is not None and (after is None or after - before):
        gained = "any type" if after is None else ", ".join(sorted(after - before))
        found.append(Change(path, WIDENS, f"field `{path}` now also accepts {gained}"))
    return found


def _show(schema: dict[str, Any]) -> str:
    return json.dumps(schema.get("type"))


def _enum(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _enums(old: dict[str, Any], new: dict[str, Any], path: str) -> list[Change]:
    before, after = _enum(old), _enum(new)
    if before == after:
        return []
    if after is not None and before is None:
        return [Change(path, NARROWS, f"field `{path}` became an enum of {_values(after)}")]
    if after is None:
        return [Change(path, WIDENS, f"field `{path}` is no longer an enum")]
    assert before is not None
    found = []
    lost = [value for value in before if value not in after]
    gained = [value for value in after if value not in before]
    if lost:
        found.append(Change(path, NARROWS, f"enum of `{path}` lost {_values(lost)}"))
    if gained:
        found.append(Change(path, WIDENS, f"enum of `{path}` gained {_values(gained)}"))
    return found


def _values(values: list[Any]) -> str:
    return ", ".join(json.dumps(value) for value in values)


def _required(old: dict[str, Any], new: dict[str, Any], path: str) -> list[Change]:
    before, after = set(old.get("required") or ()), set(new.get("required") or ())
    found = [
        Change(f"{path}.{name}", NARROWS, f"field `{path}.{name}` became required")
        for name in sorted(after - before)
    ]
    found += [
        Change(f"{path}.{name}", WIDENS, f"field `{path}.{name}` is no longer required")
        for name in sorted(before - after)
    ]
    return found


def _closed(schema: dict[str, Any]) -> bool:
    return schema.get("additionalProperties", True) is False


def _properties(old: dict[str, Any], new: dict[str, Any], path: str) -> list[Change]:
    found = []
    if _closed(new) and not _closed(old):
        found.append(Change(path, NARROWS, f"`{path}` no longer allows additional properties"))
    if _closed(old) and not _closed(new):
        found.append(Change(path, WIDENS, f"`{path}` now allows additional properties"))
    before, after = old.get("properties") or {}, new.get("properties") or {}
    for name in sorted(set(before) | set(after)):
        where = f"{path}.{name}"
        if name in before and name in after:
            found += changes(before[name], after[name], where)
        elif name in before and _closed(new):
            found.append(Change(where, NARROWS, f"field `{where}` was removed (closed object)"))
        elif name in after and _closed(old):
            found.append(Change(where, WIDENS, f"field `{where}` was added to a closed object"))
    return found
