"""Token authentication that slows down guessing: wrong tokens are counted per address
(API_TOKEN_FAILURE_LIMIT, e.g. 10/m); past the limit a wrong token from that address gets 429
with Retry-After until the window ends instead of 401. A valid token always passes: behind a
proxy many clients may share one address, and one client's mistakes must not lock out the
rest (nor does a valid request pay a cache round trip)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from automation.lib import ratelimit
from automation.lib.clientip import client_address


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate(self, request: Request) -> Any:
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            key = f"auth:bad-token:{client_address(request._request)}"
            retry_after = ratelimit.hit(key, settings.API_TOKEN_FAILURE_LIMIT)
            if retry_after is not None:
                raise exceptions.Throttled(
                    wait=retry_after,
                    detail=f"Too many wrong API tokens from this address; retry in {retry_after}s.",
                ) from None
            raise
