"""Token authentication that slows down guessing: wrong tokens are counted per address
(API_TOKEN_FAILURE_LIMIT, e.g. 10/m); past the limit every token from that address is refused
with 429 and Retry-After until the window ends, right or wrong, so guessing gains nothing."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from automation import ratelimit
from automation.clientip import client_address


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate(self, request: Request) -> Any:
        if not authentication.get_authorization_header(request):
            return None  # no token: nothing to count (the session or anonymous)
        key = f"auth:bad-token:{client_address(request._request)}"
        rate = settings.API_TOKEN_FAILURE_LIMIT
        retry_after = ratelimit.exceeded(key, rate)
        if retry_after is not None:
            raise exceptions.Throttled(
                wait=retry_after,
                detail=f"Too many wrong API tokens from this address; retry in {retry_after}s.",
            )
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            ratelimit.hit(key, rate)
            raise
