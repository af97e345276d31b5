"""Event-driven business automation on Django.

The public API for code workflows::

    from automation import workflow, action, RetryAfter, NonRetryableError
"""

from automation.celery import app as celery_app
from automation.engine.errors import NonRetryableError, RetryAfter, StepFailed, TimedOut
from automation.engine.registry import Concurrency, action, workflow
from automation.engine.retry import RetryPolicy

__all__ = [
    "Concurrency",
    "NonRetryableError",
    "RetryAfter",
    "RetryPolicy",
    "StepFailed",
    "TimedOut",
    "action",
    "celery_app",
    "workflow",
]
