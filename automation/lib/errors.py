"""The base of every refusal the domain raises: bad input, a bad signature, a decision too late.

A ``DomainError`` carries what an HTTP answer needs, so the views do not map each error
themselves: ``code`` (short, for programs), ``status`` (the HTTP status) and a message that says
what to do. automation/api/errors.py turns it into ``{"error": {"code", "message", ...}}``,
for the API views (the DRF exception handler) and for the plain Django views alike.

The engine's control flow (NonRetryableError, RetryAfter, StepFailed ...) is not made of these:
those steer a run, they are never an answer to a request.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DomainError"]


class DomainError(Exception):
    """A request the domain refuses. Subclasses set ``code`` and ``status`` (or set them per
    instance, when one class covers several refusals) and word their message as what to do."""

    code: str = "invalid"
    status: int = 400

    def describe(self) -> str:
        """The message of the error body; the exception's own text unless a subclass words it
        for the person reading the answer."""
        return str(self)

    def details(self) -> dict[str, Any]:
        """Members of the API's error body besides ``code`` and ``message`` (e.g. ``field``)."""
        return {}
