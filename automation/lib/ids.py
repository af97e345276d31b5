"""Time-ordered UUIDs (RFC 9562 version 7) for primary keys.

Random UUIDs scatter inserts across a B-tree index; version 7 puts the millisecond timestamp
first, so new rows land at the end of the index like an auto-increment, while ids stay globally
unique (they are used in idempotency keys sent to external systems).
"""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> uuid.UUID:
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & 0xFFFFFFFFFFFF) << 80  # 48-bit timestamp
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # 12 random bits
    value |= 0b10 << 62  # RFC 4122 variant
    value |= rand & 0x3FFFFFFFFFFFFFFF  # 62 random bits
    return uuid.UUID(int=value)
