"""``log``: write a line to the application log (and the step's journal)."""

from __future__ import annotations

import logging
from typing import Any

from automation import action

logger = logging.getLogger("automation.workflows")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}  # fmt: skip


@action(
    "log",
    stores_input=("*",),  # written to the application log and the step's output
    input_schema={
        "type": "object",
        "required": ["message"],
        "additionalProperties": False,
        "properties": {
            "message": {"type": "string"},
            "level": {"enum": list(LEVELS)},
            "data": {},
        },
    },
)
def log(input: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Log a message (with optional data) at a level; the output repeats it."""
    level = input.get("level", "info")
    logger.log(LEVELS[level], "run %s: %s %s", getattr(ctx, "run_id", "-"), input["message"],
               input.get("data", ""))  # fmt: skip
    return {"logged": True, "level": level, "message": input["message"]}
