"""Verify webhook signatures: Standard Webhooks, GitHub and Stripe (and the explicit "none").

Every comparison is constant-time (``hmac.compare_digest``). Timestamped schemes accept a
timestamp at most ``TOLERANCE`` away from now, in either direction, so a captured request
cannot be replayed later. During a secret rotation each of the endpoint's secrets is tried.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from automation.lib.errors import DomainError
from events.models import VerificationScheme, WebhookEndpoint

TOLERANCE = timedelta(minutes=5)


class SignatureError(DomainError):
    """The request is not proven to come from the sender; the message says what was wrong."""

    code = "invalid_signature"
    status = 401


def verify(
    *, endpoint: WebhookEndpoint, body: bytes, headers: Mapping[str, str], now: datetime
) -> datetime | None:
    """Check the request's signature; returns the signed timestamp, if the scheme has one."""
    scheme = endpoint.scheme
    if scheme == VerificationScheme.NONE:
        return None
    secrets = endpoint.verification_secrets(now)
    if not secrets:
        raise SignatureError("This endpoint has no secret; rotate its secret to set one.")
    if scheme == VerificationScheme.STANDARD_WEBHOOKS:
        return _standard_webhooks(secrets, body, headers)
    if scheme == VerificationScheme.GITHUB:
        _github(secrets, body, headers)
        return None
    if scheme == VerificationScheme.STRIPE:
        return _stripe(secrets, body, headers, now)
    raise SignatureError(f"Unknown verification scheme {scheme!r}.")


def _standard_webhooks(secrets: list[str], body: bytes, headers: Mapping[str, str]) -> datetime:
    signed = {
        name: headers.get(name, "")
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    }
    missing = [name for name, value in signed.items() if not value]
    if missing:
        raise SignatureError(f"Missing header(s): {', '.join(missing)} (Standard Webhooks).")
    payload = body.decode("utf-8")  # the caller has checked it is UTF-8
    last_error = ""
    for secret in secrets:
        try:
            Webhook(secret).verify(payload, signed, json_parse=False)
        except WebhookVerificationError as exc:
            last_error = str(exc)
            if "timestamp" in last_error.lower() or "headers" in last_error.lower():
                break  # the same for every secret
            continue
        except ValueError:
            raise SignatureError(
                "webhook-signature is malformed; expected space-separated `v1,<base64>` values."
            ) from None
        return datetime.fromtimestamp(int(signed["webhook-timestamp"]), tz=UTC)
    raise SignatureError(_explain_standard_webhooks(last_error))


def _explain_standard_webhooks(error: str) -> str:
    lowered = error.lower()
    if "too old" in lowered or "too new" in lowered:
        return (
            f"{error}: webhook-timestamp must be within 5 minutes of the server's clock "
            "(replayed or delayed request, or a clock out of sync)."
        )
    if "headers" in lowered:
        return "webhook-timestamp is not a Unix timestamp in seconds."
    return "No signature in webhook-signature matches the body (wrong secret or altered body)."


def _github(secrets: list[str], body: bytes, headers: Mapping[str, str]) -> None:
    given = headers.get("x-hub-signature-256", "")
    if not given:
        raise SignatureError("Missing header X-Hub-Signature-256 (GitHub).")
    if not headers.get("x-github-delivery", ""):
        raise SignatureError("Missing header X-GitHub-Delivery (GitHub sends one per delivery).")
    if not given.startswith("sha256="):
        raise SignatureError("X-Hub-Signature-256 must look like sha256=<hex digest>.")
    given_digest = given[len("sha256=") :].encode()
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
        if hmac.compare_digest(expected, given_digest):
            return
    raise SignatureError(
        "X-Hub-Signature-256 does not match the body (wrong secret or altered body)."
    )


def github_replay_key(body: bytes) -> str:
    """The idempotency key of a GitHub delivery: a digest of the signed body.

    GitHub signs the body only: no timestamp, and not X-GitHub-Delivery, which anyone holding
    a captured request can change. Keyed on the delivery id, a captured body replayed with a
    new id was a new event each time; keyed on the body, it is a duplicate of the first for as
    long as that event is kept (the replay window is the dedupe window, i.e. event retention).
    A redelivery from GitHub's UI has the same body, so it is a duplicate too."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _stripe(secrets: list[str], body: bytes, headers: Mapping[str, str], now: datetime) -> datetime:
    header = headers.get("stripe-signature", "")
    if not header:
        raise SignatureError("Missing header Stripe-Signature.")
    timestamp, signatures = _parse_stripe_header(header)
    signed_at = _signed_at(timestamp)
    if signed_at is None or abs(now - signed_at) > TOLERANCE:
        raise SignatureError(
            "Stripe-Signature timestamp is more than 5 minutes from the server's clock "
            "(replayed or delayed request, or a clock out of sync)."
        )
    signed_payload = f"{timestamp}.".encode() + body
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed_payload, hashlib.sha256).hexdigest().encode()
        if any(hmac.compare_digest(expected, given) for given in signatures):
            return signed_at
    raise SignatureError("No v1 signature in Stripe-Signature matches the body.")


def _signed_at(timestamp: int) -> datetime | None:
    """The instant of a Unix timestamp; None when no date has it (t=99999999999999999999)."""
    try:
        return datetime.fromtimestamp(timestamp, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _parse_stripe_header(header: str) -> tuple[int, list[bytes]]:
    timestamp: int | None = None
    signatures: list[bytes] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("Stripe-Signature t= is not a Unix timestamp.") from None
        elif key == "v1":
            signatures.append(value.encode())
    if timestamp is None or not signatures:
        raise SignatureError("Stripe-Signature must contain t=<timestamp> and v1=<signature>.")
    return timestamp, signatures
