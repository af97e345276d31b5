"""Time-ordered UUIDs (RFC 9562 version 7) for primary keys.

Random UUIDs scatter inserts across a B-tree index; version 7 puts the millisecond timestamp
first, so new rows land at the end of the index like an auto-increment, while ids stay globally
unique (they are used in idempotency keys sent to external systems).
"""

from __future__ import annotations

import os
import time
import uuid

from django.db.models import CharField, F, Q, Value
from django.db.models.functions import Cast, Replace, Substr
from django.db.models.lookups import StartsWith


def uuid7() -> uuid.UUID:
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & 0xFFFFFFFFFFFF) << 80  # 48-bit timestamp
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # 12 random bits
    value |= 0b10 << 62  # RFC 4122 variant
    value |= rand & 0x3FFFFFFFFFFFFFFF  # 62 random bits
    return uuid.UUID(int=value)


# --- Short ids --------------------------------------------------------------------------------
#
# Ids made in the same minute share their first characters (the timestamp), so a prefix of the
# whole id tells nothing apart. The short id people see and search for is the start of the last
# group instead: random bits only.

SHORT_ID_LENGTH = 8
#: Where the last group starts in the id's 32 hex digits (after 8-4-4-4).
_LAST_GROUP = 20
_HEX = frozenset("0123456789abcdef")


def short_id(value: uuid.UUID | str) -> str:
    """The first characters of the id's random last group, e.g. ``b242fe9c``."""
    return uuid.UUID(str(value)).hex[_LAST_GROUP : _LAST_GROUP + SHORT_ID_LENGTH]


class BadIdPrefix(ValueError):
    pass


def id_lookup(field: str, text: str) -> Q:
    """A filter for ``field`` (a UUID field) from what a person pastes: a whole id, or the short
    id (4 to 12 characters of its last group, from the start). Raises BadIdPrefix otherwise."""
    text = text.strip().strip("…").lower()
    try:
        return Q(**{field: uuid.UUID(text)})
    except ValueError:
        pass
    if not 4 <= len(text) <= 32 - _LAST_GROUP or not set(text) <= _HEX:
        raise BadIdPrefix(
            f"{text!r} is neither an id nor a short id: give the whole id, or 4 to 12 hex "
            f"characters from the start of its last group (the short id, e.g. b242fe9c)."
        )
    # The hex digits without dashes: SQLite stores them so, PostgreSQL's uuid prints with dashes.
    digits = Replace(Cast(F(field), CharField()), Value("-"), Value(""))
    return Q(StartsWith(Substr(digits, _LAST_GROUP + 1), text))
