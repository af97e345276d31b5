"""Exceptions of the engine: the ones workflow code raises or catches, and internal signals.

Internal control flow (suspending, divergence, cancellation) derives from BaseException so a
workflow's own ``except Exception`` cannot swallow it by accident.
"""

from __future__ import annotations

from typing import Any


class NonRetryableError(Exception):
    """Raise from a step to fail it at once: retrying cannot help (bad input, 4xx, …)."""


class RetryAfter(Exception):
    """Raise from a step to retry it after ``seconds`` (e.g. a 429's Retry-After)."""

    def __init__(self, seconds: float, message: str = "") -> None:
        super().__init__(message or f"retry after {seconds}s")
        self.seconds = float(seconds)


class StepFailed(Exception):
    """A step failed for good (retries exhausted or not retryable). Workflow code may catch it."""

    def __init__(self, step_id: str, error: dict[str, Any]) -> None:
        super().__init__(f"step {step_id!r} failed: {error.get('type')}: {error.get('message')}")
        self.step_id = step_id
        self.error = error


class WorkflowError(Exception):
    """The workflow cannot run as written (unknown workflow, bad step id, bad arguments, …)."""


class UnknownWorkflow(WorkflowError):
    pass


class StepTimeout(Exception):
    """A step ran longer than its timeout."""


class DeterminismError(BaseException):
    """Replaying the code did not reach the steps the journal recorded: the code changed.

    ``step_id``: the operation the code asks for where the journal disagrees (the replay
    check reports it)."""

    def __init__(self, message: str, step_id: str = "") -> None:
        super().__init__(message)
        self.step_id = step_id


class Suspend(BaseException):
    """The run waits (sleep, event, approval, retry backoff, child, branches): release it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReplayEnd(BaseException):
    """The replay check reached the end of the recorded history (nothing past it to check)."""


class Cancelled(BaseException):
    """The run was asked to stop."""


class RunTimedOut(BaseException):
    """The run passed its deadline (the workflow's ``timeout``)."""


class LeaseLost(BaseException):
    """Another worker took the run over (ours was presumed dead); abandon quietly."""


class TimedOut:
    """What ``wait_for_event`` returns when its timeout passes: falsy, so ``if not event:``."""

    timed_out = True

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "TimedOut()"


TIMED_OUT = TimedOut()
