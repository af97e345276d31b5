"""API_RATE_LIMIT: requests allowed per API token (per user for sessions, per address for
anonymous requests: the address as automation.lib.clientip reads it), in every process that
shares the rate-limit cache. Over it: 429 ``rate_limited`` with Retry-After (DRF's Throttled,
shaped by automation.api.errors)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from automation.lib import ratelimit
from automation.lib.clientip import client_address


class ApiRateThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        self.retry_after = ratelimit.hit(self._key(request), settings.API_RATE_LIMIT)
        return self.retry_after is None

    def wait(self) -> float | None:
        return self.retry_after

    def _key(self, request: Request) -> str:
        token = getattr(request.auth, "key", None)
        if token:
            return f"api:token:{ratelimit.fingerprint(token)}"
        if request.user.is_authenticated:
            return f"api:user:{request.user.pk}"
        return f"api:ip:{self.get_ident(request)}"

    def get_ident(self, request: Request) -> str:
        # DRF's own reads X-Forwarded-For as the client wrote it (NUM_PROXIES unset): every
        # request could claim a new address and escape the limit.
        return client_address(request._request)
