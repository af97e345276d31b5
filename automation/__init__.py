"""Event-driven business automation on Django. This module is the API a workflow author imports::

    from automation import Context, Event, NonRetryableError, RetryAfter, action, workflow

    @workflow("onboard-user", on="user.created")
    def onboard(ctx: Context, event: Event) -> dict:
        ctx.step("send-welcome", send_welcome, event.data["email"])
        return {"welcomed": True}

Everything in ``__all__`` is supported; the modules behind it (``automation.engine.*``) are not.

The package is also the project's configuration (``automation.settings``), so importing it
loads nothing: each name is imported on first use, once Django is set up. The Celery
application lives in ``automation.celery``; ``celery -A automation`` finds it there, and
``AutomationConfig.ready`` imports it so that ``@shared_task`` tasks bind to it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automation.engine.context import Context
    from automation.engine.errors import (
        NonRetryableError,
        RetryAfter,
        StepFailed,
        TimedOut,
        WorkflowError,
    )
    from automation.engine.registry import Concurrency, action, workflow
    from automation.engine.retry import RetryPolicy
    from automation.engine.specs import EventView as Event

__all__ = [
    "Concurrency",
    "Context",
    "Event",
    "NonRetryableError",
    "RetryAfter",
    "RetryPolicy",
    "StepFailed",
    "TimedOut",
    "WorkflowError",
    "action",
    "workflow",
]

# Public name -> (module, name there).
_EXPORTS: dict[str, tuple[str, str]] = {
    "Concurrency": ("automation.engine.registry", "Concurrency"),
    "Context": ("automation.engine.context", "Context"),
    "Event": ("automation.engine.specs", "EventView"),
    "NonRetryableError": ("automation.engine.errors", "NonRetryableError"),
    "RetryAfter": ("automation.engine.errors", "RetryAfter"),
    "RetryPolicy": ("automation.engine.retry", "RetryPolicy"),
    "StepFailed": ("automation.engine.errors", "StepFailed"),
    "TimedOut": ("automation.engine.errors", "TimedOut"),
    "WorkflowError": ("automation.engine.errors", "WorkflowError"),
    "action": ("automation.engine.registry", "action"),
    "workflow": ("automation.engine.registry", "workflow"),
}


def __getattr__(name: str) -> Any:
    # Anything else is an AttributeError, which is also what lets `celery -A automation` and
    # `from automation import <submodule>` go on to look for the submodule.
    if name not in _EXPORTS:
        raise AttributeError(f"module 'automation' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
