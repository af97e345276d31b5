"""kill -9 during ingest: a real server process is killed while signed webhooks pour in.

Senders behave as webhook providers do: each message has its id and is sent again, with that
id, until it is answered 202. Promised: every 202 was stored (a 202 is only sent after the
commit), and no message is stored twice (the id deduplicates the resends of a message that was
stored but whose answer died with the server).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error

import pytest

from events.models import Event
from events.webhooks import webhook_endpoint_create
from tests.events.servers import post
from tests.events.signing import body_of, standard_webhooks_headers
from tests.processes import project_env, start_server, stop

SENDERS = 4
PER_SENDER = 40
KILL_AFTER = 40  # accepted webhooks before the kill


class Senders:
    """Threads that post every message until it is answered 202, to whichever server is up."""

    def __init__(self, secret: str, url: str) -> None:
        self.secret = secret
        self.url = url
        self.lock = threading.Lock()
        self.accepted: dict[str, tuple[str, bool]] = {}  # id -> (event id, duplicate)
        self.unanswered: set[str] = set()  # ids whose request got no answer at least once
        self.threads = [threading.Thread(target=self.send_all, args=(n,)) for n in range(SENDERS)]

    def send_all(self, sender: int) -> None:
        for i in range(PER_SENDER):
            self.send(f"msg_{sender}_{i}", {"type": "order.created", "data": {"n": sender, "i": i}})

    def send(self, msg_id: str, payload: dict) -> None:
        body = body_of(payload)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            headers = {
                "Content-Type": "application/json",
                **standard_webhooks_headers(self.secret, body, msg_id=msg_id),
            }
            try:
                status, raw = post(f"{self.url}/hooks/shop/", body, headers, timeout=10)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                status, raw = None, b""
            if status == 202:
                reply = json.loads(raw)
                with self.lock:
                    self.accepted[msg_id] = (reply["event_id"], reply["duplicate"])
                return
            with self.lock:
                self.unanswered.add(msg_id)
            time.sleep(0.1)  # the server is down (or answered 503): send it again

    def count(self) -> int:
        with self.lock:
            return len(self.accepted)


@pytest.mark.django_db(transaction=True)
def test_kill_9_while_webhooks_arrive_keeps_every_202_and_stores_nothing_twice(tmp_path):
    _, secret = webhook_endpoint_create(slug="shop", scheme="standard_webhooks")
    env = project_env()
    first = start_server(env, tmp_path / "first.log")
    senders = Senders(secret, first.url)
    for thread in senders.threads:
        thread.start()
    deadline = time.monotonic() + 60
    while senders.count() < KILL_AFTER and time.monotonic() < deadline:
        time.sleep(0.01)
    first.process.kill()  # kill -9, mid-stream
    first.process.wait(timeout=10)
    accepted_before_kill = dict(senders.accepted)
    second = start_server(env, tmp_path / "second.log")
    senders.url = second.url
    try:
        for thread in senders.threads:
            thread.join(timeout=120)
    finally:
        stop(second.process)

    total = SENDERS * PER_SENDER
    assert first.process.returncode == -9
    assert KILL_AFTER <= len(accepted_before_kill) < total  # the kill came mid-stream
    assert len(senders.accepted) == total  # every message was answered 202 in the end
    stored = dict(Event.objects.values_list("idempotency_key", "id"))
    # Every 202 was stored, as the event it named.
    for msg_id, (event_id, _) in senders.accepted.items():
        assert str(stored[msg_id]) == event_id, msg_id
    # Nothing twice: one event per message id, and nothing else.
    assert Event.objects.count() == len(stored) == total
    # Resends of messages whose first answer died with the server: stored once, and reported
    # as duplicates when the first attempt had been committed.
    resent = senders.unanswered & set(senders.accepted)
    print(
        f"accepted before the kill {len(accepted_before_kill)}, sent again {len(resent)}, "
        f"of which already stored {sum(senders.accepted[m][1] for m in resent)}"
    )
