"""The signed-in user of the request being served, for code that runs deep inside it.

A model saved in the admin or in a view fires signals; the code that turns the save into an
event does not receive the request, yet the event must record who caused it (approvals refuse
that person under four-eyes). ``RequestUserMiddleware`` keeps the request in a context variable
for the length of the request (sync and async: asgiref copies the context into the thread of
a sync view), and ``request_user()`` reads its user then, after DRF's token authentication has
set it. Outside a request (workers, commands, schedules) there is no user, nor inside
``detached()``: the engine's entry points (routing an event, advancing a run, running a
branch) use it, so work a backend does inline in a request's thread is never the signed-in
user's (a run resumed by the approver would otherwise make them the requester of what it
starts).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

__all__ = ["RequestUserMiddleware", "detached", "request_user"]

_request: ContextVar[HttpRequest | None] = ContextVar("request_user_request", default=None)


def request_user() -> Any:
    """The authenticated user of the current request, or None (anonymous, or no request)."""
    request = _request.get()
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


@contextmanager
def detached() -> Iterator[None]:
    """No request user for the length of the block (engine work)."""
    token = _request.set(None)
    try:
        yield
    finally:
        _request.reset(token)


class RequestUserMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            response: Awaitable[HttpResponse] = self.get_response(request)
            return await response
        finally:
            _request.reset(token)
