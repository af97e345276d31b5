"""The built-in actions, one module each. Importing this package registers them.

How to add an action: write ``fn(input, ctx)`` in an app's ``workflows.py`` (or a module it
imports), decorate it with ``@action("vendor.verb", input_schema={...})``, and return JSON.
Raise ``NonRetryableError`` for failures a retry cannot fix and ``RetryAfter`` for rate limits;
use ``ctx.idempotency_key(ctx.current_step_id)`` for external effects that must happen once.
"""

from automation.actions import (  # noqa: F401  (registration happens on import)
    ai,
    email,
    events,
    http,
    log,
    records,
    slack,
)
