"""POST /hooks/<slug>/: each scheme's signature, idempotency, and every refusal (JSON error,
nothing stored)."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from events import webhooks
from events.models import Event, EventSchema
from tests.events.signing import (
    body_of,
    github_headers,
    standard_webhooks_headers,
    stripe_headers,
    stripe_signature,
)

pytestmark = pytest.mark.django_db

SIGNUP = {"type": "user.signed_up", "timestamp": "2026-11-23T10:00:00Z", "data": {"email": "a@b.c"}}


def assert_refused(response, status: int, code: str, *, mentions: str = "") -> None:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert mentions.lower() in error["message"].lower()
    assert Event.objects.count() == 0


# --- Standard Webhooks ----------------------------------------------------------------------


def test_standard_webhook_is_stored_with_its_type_data_and_delivery_id(make_endpoint, post_hook):
    _endpoint, secret = make_endpoint()
    body = body_of(SIGNUP)
    headers = standard_webhooks_headers(secret, body, msg_id="msg_1")
    response = post_hook("shop", body, {**headers, "Authorization": "Bearer x"})
    assert response.status_code == 202, response.content
    assert response.json()["duplicate"] is False
    event = Event.objects.get(id=response.json()["event_id"])
    assert event.type == "user.signed_up"
    assert event.data == {"email": "a@b.c"}  # the convention's `data`
    assert event.source == "webhook:shop"
    assert event.idempotency_key == "msg_1"
    assert event.headers["webhook-id"] == "msg_1"
    assert "webhook-signature" not in event.headers
    assert "authorization" not in event.headers


def test_same_webhook_id_twice_is_one_event_and_the_second_reply_says_duplicate(
    make_endpoint, post_hook
):
    _, secret = make_endpoint()
    body = body_of(SIGNUP)
    first = post_hook("shop", body, standard_webhooks_headers(secret, body, msg_id="msg_9"))
    second = post_hook("shop", body, standard_webhooks_headers(secret, body, msg_id="msg_9"))
    assert first.status_code == second.status_code == 202
    assert second.json() == {"event_id": first.json()["event_id"], "duplicate": True}
    assert Event.objects.count() == 1


def test_the_same_delivery_id_on_two_endpoints_is_two_events(make_endpoint, post_hook):
    _, secret_a = make_endpoint("a")
    _, secret_b = make_endpoint("b")
    body = body_of(SIGNUP)
    post_hook("a", body, standard_webhooks_headers(secret_a, body, msg_id="msg_1"))
    post_hook("b", body, standard_webhooks_headers(secret_b, body, msg_id="msg_1"))
    assert Event.objects.count() == 2


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_standard_webhooks_header_is_401(make_endpoint, post_hook, missing):
    _, secret = make_endpoint()
    body = body_of(SIGNUP)
    headers = standard_webhooks_headers(secret, body)
    del headers[missing]
    assert_refused(post_hook("shop", body, headers), 401, "invalid_signature", mentions=missing)


def test_a_signature_made_with_another_secret_is_401(make_endpoint, post_hook):
    make_endpoint()
    other = webhooks.webhook_secret_generate("standard_webhooks")
    body = body_of(SIGNUP)
    response = post_hook("shop", body, standard_webhooks_headers(other, body))
    assert_refused(response, 401, "invalid_signature", mentions="matches")


def test_a_tampered_body_is_401(make_endpoint, post_hook):
    _, secret = make_endpoint()
    headers = standard_webhooks_headers(secret, body_of(SIGNUP))
    tampered = body_of({**SIGNUP, "data": {"email": "evil@x.y"}})
    assert_refused(post_hook("shop", tampered, headers), 401, "invalid_signature")


@pytest.mark.parametrize(
    ("shift", "word"), [(timedelta(minutes=-6), "too old"), (timedelta(minutes=6), "too new")]
)
def test_stale_or_future_timestamps_are_401(make_endpoint, post_hook, shift, word):
    _, secret = make_endpoint()
    body = body_of(SIGNUP)
    headers = standard_webhooks_headers(secret, body, at=datetime.now(UTC) + shift)
    assert_refused(post_hook("shop", body, headers), 401, "invalid_signature", mentions=word)


def test_timestamps_within_five_minutes_either_way_are_accepted(make_endpoint, post_hook):
    _, secret = make_endpoint()
    for minutes in (-4, 4):
        body = body_of(SIGNUP)
        at = datetime.now(UTC) + timedelta(minutes=minutes)
        response = post_hook("shop", body, standard_webhooks_headers(secret, body, at=at))
        assert response.status_code == 202, response.content


def test_a_malformed_signature_header_is_401(make_endpoint, post_hook):
    _, secret = make_endpoint()
    body = body_of(SIGNUP)
    headers = {**standard_webhooks_headers(secret, body), "webhook-signature": "garbage"}
    assert_refused(post_hook("shop", body, headers), 401, "invalid_signature", mentions="v1")


def test_one_matching_signature_among_several_is_enough(make_endpoint, post_hook):
    _, secret = make_endpoint()
    body = body_of(SIGNUP)
    headers = standard_webhooks_headers(secret, body)
    wrong = standard_webhooks_headers(
        webhooks.webhook_secret_generate("standard_webhooks"), body, msg_id=headers["webhook-id"]
    )
    headers["webhook-signature"] = f"{wrong['webhook-signature']} {headers['webhook-signature']}"
    assert post_hook("shop", body, headers).status_code == 202


def test_after_rotation_old_and_new_secrets_verify_until_the_grace_period_ends(
    make_endpoint, post_hook
):
    endpoint, old = make_endpoint()
    new = webhooks.webhook_endpoint_rotate_secret(endpoint=endpoint, grace=timedelta(hours=1))
    assert new != old
    for secret in (old, new):
        body = body_of(SIGNUP)
        assert post_hook("shop", body, standard_webhooks_headers(secret, body)).status_code == 202
    endpoint.refresh_from_db()
    endpoint.previous_secret_expires_at = timezone.now() - timedelta(seconds=1)
    endpoint.save()
    body = body_of(SIGNUP)
    response = post_hook("shop", body, standard_webhooks_headers(old, body))
    assert response.status_code == 401


# --- GitHub and Stripe ----------------------------------------------------------------------


def test_github_delivery_takes_its_type_from_the_header_and_dedupes_on_its_body(
    make_endpoint, post_hook
):
    make_endpoint("gh", "github", type_prefix="github.")
    _, secret = webhooks.webhook_endpoint_create(slug="gh2", scheme="github")
    body = body_of({"ref": "refs/heads/main", "commits": []})
    headers = github_headers(secret, body, event="push", delivery="d-1")
    first = post_hook("gh2", body, headers)
    second = post_hook("gh2", body, headers)
    assert first.status_code == 202, first.content
    assert second.json()["duplicate"] is True
    event = Event.objects.get()
    assert event.type == "push"
    assert event.idempotency_key == "sha256:" + hashlib.sha256(body).hexdigest()
    assert event.headers["x-github-delivery"] == "d-1"
    assert event.data == {"ref": "refs/heads/main", "commits": []}


def test_github_type_prefix(make_endpoint, post_hook):
    _, secret = make_endpoint("gh", "github", type_prefix="github.")
    body = body_of({"action": "opened"})
    response = post_hook("gh", body, github_headers(secret, body, event="pull_request"))
    assert response.status_code == 202
    assert Event.objects.get().type == "github.pull_request"


@pytest.mark.parametrize(
    ("signature", "mentions"),
    [(None, "missing"), ("sha1=abc", "sha256="), ("sha256=" + "0" * 64, "does not match")],
)
def test_bad_github_signatures_are_401(make_endpoint, post_hook, signature, mentions):
    _, secret = make_endpoint("gh", "github")
    body = body_of({"zen": "hi"})
    headers = github_headers(secret, body)
    if signature is None:
        del headers["X-Hub-Signature-256"]
    else:
        headers["X-Hub-Signature-256"] = signature
    assert_refused(post_hook("gh", body, headers), 401, "invalid_signature", mentions=mentions)


def test_stripe_event_is_stored_under_its_event_id(make_endpoint, post_hook):
    _, secret = make_endpoint("stripe", "stripe")
    payload = {"id": "evt_1", "type": "invoice.paid", "created": 1, "data": {"object": {}}}
    body = body_of(payload)
    first = post_hook("stripe", body, stripe_headers(secret, body))
    second = post_hook("stripe", body, stripe_headers(secret, body))
    assert first.status_code == 202, first.content
    assert second.json() == {"event_id": first.json()["event_id"], "duplicate": True}
    event = Event.objects.get()
    assert (event.type, event.idempotency_key, event.data) == ("invoice.paid", "evt_1", payload)


@pytest.mark.parametrize("shift", [-310, 310])
def test_stripe_timestamps_beyond_tolerance_are_401(make_endpoint, post_hook, shift):
    _, secret = make_endpoint("stripe", "stripe")
    body = body_of({"id": "evt_1", "type": "invoice.paid"})
    headers = stripe_headers(secret, body, timestamp=int(time.time()) + shift)
    assert_refused(post_hook("stripe", body, headers), 401, "invalid_signature", mentions="5 min")


def test_stripe_accepts_any_of_several_v1_signatures(make_endpoint, post_hook):
    _, secret = make_endpoint("stripe", "stripe")
    body = body_of({"id": "evt_2", "type": "invoice.paid"})
    now = int(time.time())
    good = stripe_signature(secret, body, timestamp=now).split(",")[1]
    header = f"t={now},v1={'ab' * 32},{good},v0=ignored"
    assert post_hook("stripe", body, {"Stripe-Signature": header}).status_code == 202


@pytest.mark.parametrize("header", ["", "v1=abc", "t=soon,v1=abc", "t=123"])
def test_malformed_stripe_signature_headers_are_401(make_endpoint, post_hook, header):
    make_endpoint("stripe", "stripe")
    body = body_of({"id": "evt_1", "type": "invoice.paid"})
    headers = {"Stripe-Signature": header} if header else {}
    assert_refused(post_hook("stripe", body, headers), 401, "invalid_signature")


def test_none_scheme_with_a_fixed_type_and_an_idempotency_key_header(make_endpoint, post_hook):
    make_endpoint("lan", "none", type_from="fixed", type_value="sensor.reading")
    body = body_of({"celsius": 21})
    first = post_hook("lan", body, {"Idempotency-Key": "k1"})
    second = post_hook("lan", body, {"Idempotency-Key": "k1"})
    assert first.status_code == 202
    assert second.json()["duplicate"] is True
    assert Event.objects.get().type == "sensor.reading"


def test_type_and_data_from_json_paths(make_endpoint, post_hook):
    make_endpoint("crm", "none", type_from="json_path", type_value="meta.kind", data_path="payload")
    body = body_of({"meta": {"kind": "contact.created"}, "payload": {"id": 7}})
    assert post_hook("crm", body).status_code == 202
    event = Event.objects.get()
    assert (event.type, event.data) == ("contact.created", {"id": 7})


# --- Bad input: every refusal is a JSON error and stores nothing ----------------------------


def test_unknown_slug_is_404(db, post_hook):
    assert_refused(post_hook("nope", b"{}"), 404, "unknown_endpoint", mentions="nope")


def test_disabled_endpoint_is_404(make_endpoint, post_hook):
    make_endpoint("off", "none", active=False)
    assert_refused(post_hook("off", body_of({"type": "a.b"})), 404, "unknown_endpoint")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_unsupported_content_type_is_415(make_endpoint, post_hook, content_type):
    make_endpoint("lan", "none")
    response = post_hook("lan", body_of({"type": "a.b"}), content_type=content_type)
    assert_refused(response, 415, "unsupported_content_type", mentions="application/json")


def test_json_with_charset_and_plus_json_types_are_accepted(make_endpoint, post_hook):
    make_endpoint("lan", "none")
    for content_type in ("application/json; charset=utf-8", "application/vnd.acme+json"):
        assert (
            post_hook("lan", body_of({"type": "a.b"}), content_type=content_type).status_code == 202
        )


def test_body_over_the_endpoint_limit_is_413(make_endpoint, post_hook):
    make_endpoint("lan", "none", max_body_bytes=100)
    big = body_of({"type": "a.b", "pad": "x" * 200})
    assert_refused(post_hook("lan", big), 413, "body_too_large", mentions="100 bytes")


def test_body_over_the_default_limit_is_413(make_endpoint, post_hook, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1024
    make_endpoint("lan", "none")
    assert_refused(post_hook("lan", body_of({"pad": "x" * 2000})), 413, "body_too_large")


def test_a_lying_content_length_does_not_get_a_big_body_in(make_endpoint, client):
    make_endpoint("lan", "none", max_body_bytes=100)
    body = body_of({"type": "a.b", "pad": "x" * 500})
    # The real size is checked while reading, whatever Content-Length claims.
    response = client.generic(
        "POST", "/hooks/lan/", body, content_type="application/json", CONTENT_LENGTH="50"
    )
    assert response.status_code in (400, 413)
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"   ", "malformed_json"),
        (b"\xff\xfe{}", "malformed_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"text"', "not_an_object"),
        (b'{"a":' + b"[" * 100 + b"]" * 100 + b"}", "too_deep"),
        (b'{"a":' * 70 + b"1" + b"}" * 70, "too_deep"),
        (b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "too_deep"),
    ],
)
def test_malformed_bodies_are_400(make_endpoint, post_hook, body, code):
    make_endpoint("lan", "none")
    assert_refused(post_hook("lan", body), 400, code)


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":' * 63 + b"1" + b"}" * 63,  # 63 levels: EVENTS_MAX_JSON_DEPTH is 64
        b'{"a":' * 63 + b"[1]" + b"}" * 63,  # 64
        b'{"text": "' + b"[{" * 500 + b'", "list": [' + b"[]," * 500 + b"[]]}",  # 2 levels deep
    ],
    ids=["63 levels", "64 levels", "brackets in strings and 500 siblings"],
)
def test_bodies_within_the_depth_limit_are_stored(make_endpoint, post_hook, body):
    make_endpoint("lan", "none", type_from="fixed", type_value="lan.posted")
    response = post_hook("lan", body)
    assert response.status_code == 202, response.content
    assert Event.objects.get().data == json.loads(body)


def test_malformed_json_with_a_valid_signature_is_400(make_endpoint, post_hook):
    _, secret = make_endpoint()
    body = b'{"type": "user.signed_up",'
    response = post_hook("shop", body, standard_webhooks_headers(secret, body))
    assert_refused(response, 400, "malformed_json")


def test_signature_is_checked_before_the_body_is_parsed(make_endpoint, post_hook):
    make_endpoint()
    assert_refused(post_hook("shop", b"{not json"), 401, "invalid_signature")


def test_missing_or_invalid_type_is_400(make_endpoint, post_hook):
    make_endpoint("lan", "none")
    assert_refused(post_hook("lan", body_of({"data": {}})), 400, "missing_type", mentions="type")
    assert_refused(post_hook("lan", body_of({"type": 7})), 400, "missing_type")
    assert_refused(post_hook("lan", body_of({"type": "bad type!"})), 400, "invalid_event")


def test_github_without_event_header_is_400(make_endpoint, post_hook):
    _, secret = make_endpoint("gh", "github")
    body = body_of({})
    headers = github_headers(secret, body)
    del headers["X-GitHub-Event"]
    assert_refused(post_hook("gh", body, headers), 400, "missing_type", mentions="X-GitHub-Event")


def test_data_failing_its_schema_is_400_naming_the_path(make_endpoint, post_hook):
    EventSchema.objects.create(
        type="user.signed_up",
        schema={
            "type": "object",
            "properties": {"email": {"type": "string"}, "tags": {"items": {"type": "string"}}},
            "required": ["email"],
        },
    )
    _, secret = make_endpoint()
    body = body_of({"type": "user.signed_up", "data": {"email": "a@b.c", "tags": ["x", 3]}})
    response = post_hook("shop", body, standard_webhooks_headers(secret, body))
    assert_refused(response, 400, "invalid_event", mentions="data.tags[1]")


def test_get_is_405_with_a_json_error(make_endpoint, client):
    make_endpoint("lan", "none")
    response = client.get("/hooks/lan/")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_webhooks_need_no_csrf_token(make_endpoint):
    from django.test import Client

    make_endpoint("lan", "none")
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/hooks/lan", body_of({"type": "a.b"}), content_type="application/json")
    assert response.status_code == 202  # also without the trailing slash


def test_a_nul_character_the_database_cannot_store_is_never_a_500(make_endpoint, post_hook):
    from django.db import connection

    make_endpoint("lan", "none")
    response = post_hook("lan", b'{"type": "a.b", "text": "nul\\u0000here"}')
    if connection.vendor == "postgresql":  # jsonb refuses U+0000
        assert_refused(response, 400, "unstorable_value")
    else:
        assert response.status_code == 202


def test_a_secret_rotated_by_another_process_is_accepted_at_once(make_endpoint, post_hook):
    endpoint, old = make_endpoint()
    body = body_of(SIGNUP)
    assert post_hook("shop", body, standard_webhooks_headers(old, body)).status_code == 202
    # Another process rotates: this process's cached endpoint still has the old secret.
    new = webhooks.webhook_secret_generate("standard_webhooks")
    type(endpoint).objects.filter(pk=endpoint.pk).update(secret=new)
    body = body_of({**SIGNUP, "data": {"email": "second@b.c"}})
    response = post_hook("shop", body, standard_webhooks_headers(new, body))
    assert response.status_code == 202, response.content


def test_disabling_an_endpoint_applies_at_once_in_this_process(make_endpoint, post_hook):
    endpoint, _ = make_endpoint("lan", "none")
    assert post_hook("lan", body_of({"type": "a.b"})).status_code == 202
    endpoint.active = False
    endpoint.save()
    assert post_hook("lan", body_of({"type": "a.b"})).status_code == 404


def test_the_hot_path_costs_one_query_once_the_endpoint_is_cached(
    make_endpoint, post_hook, django_assert_num_queries
):
    _, secret = make_endpoint()
    body = body_of(SIGNUP)
    post_hook("shop", body, standard_webhooks_headers(secret, body))
    body = body_of({**SIGNUP, "data": {"n": 2}})
    headers = standard_webhooks_headers(secret, body)
    # SAVEPOINT, INSERT, RELEASE: tests run inside a transaction (in autocommit: the INSERT alone)
    with django_assert_num_queries(3):
        assert post_hook("shop", body, headers).status_code == 202
