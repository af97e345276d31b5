#!/usr/bin/env python3
"""Restart PostgreSQL during a webhook load: 503 while it is down, never a 500, never a 202
for an event that was not stored, and every stored event's run completes.

A PostgreSQL cluster of our own (initdb on a free port, fsync on) behind one gunicorn (2 sync
workers) and two Celery workers. --clients threads send signed Standard Webhooks for
--seconds; every --every seconds PostgreSQL is stopped (immediate mode: a crash) and started
again after --down seconds.

    .venv/bin/python bench/faults/restart_postgres.py [--seconds 30] [--every 8] [--down 2]
    .venv/bin/python bench/faults/restart_postgres.py --smoke

Exits 1 on any 500 (or other unexpected answer), any 202 whose event is missing, or any run
lost, stuck or recorded twice.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from standardwebhooks.webhooks import Webhook

from bench.common import start_gunicorn, stop
from bench.faults.harness import broken, fault_stack, query, report, settle

MIN_ACCEPTED = 20  # webhooks a run must have accepted to say anything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the load")
    parser.add_argument("--clients", type=int, default=4, help="concurrent senders")
    parser.add_argument("--every", type=float, default=8.0, help="seconds between restarts")
    parser.add_argument("--down", type=float, default=2.0, help="seconds PostgreSQL is down")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CI check")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.clients, args.every, args.down = 4.0, 2, 1.5, 1.0

    with fault_stack("bench-pg-", own_postgres=True) as stack:
        from events.webhooks import webhook_endpoint_create

        _, secret = webhook_endpoint_create(
            slug="fault", scheme="standard_webhooks", type_from="fixed", type_value="bench.fault"
        )
        gunicorn, port = start_gunicorn(stack.env, stack.log)
        try:
            stack.start_processes()
            answers, accepted = load(args, port, secret, stack)
        finally:
            stop(gunicorn)
        stored = {row[0] for row in query("SELECT id::text FROM events_event")}
        missing = [event_id for event_id in accepted if event_id not in stored]
        # Committed, then answered 503 (the database went away before the answer): the sender
        # retries and the retry is deduplicated by its webhook-id.
        unanswered = len(stored - set(accepted))
        settle(len(accepted), timeout=120, stack=stack)
        unexpected = sum(n for status, n in answers.items() if status not in (202, 503))
        ok = report(
            f"restart PostgreSQL every {args.every:g}s ({args.down:g}s down) during "
            f"{args.seconds:g}s of webhooks from {args.clients} clients",
            len(accepted),
            [
                ("webhooks answered 202", answers.get(202, 0)),
                ("webhooks answered 503 (database down)", answers.get(503, 0)),
                ("webhooks answered 500", answers.get(500, 0)),
                ("other answers or connection errors", unexpected - answers.get(500, 0)),
                ("202 whose event is not stored", len(missing)),
                ("stored although not answered 202 (a retry is deduplicated)", unanswered),
            ],
            stack=stack,
            unanswered=unanswered,
        )
        if unexpected or missing:
            ok = broken(f"{unexpected} unexpected answers, {len(missing)} 202s not stored")
    sys.exit(0 if ok else 1)


def load(args, port: int, secret: str, stack) -> tuple[collections.Counter, list[str]]:
    webhook = Webhook(secret)
    answers: collections.Counter = collections.Counter()
    accepted: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + args.seconds
    # On a loaded machine a short (smoke) load can end with nothing accepted, which would prove
    # nothing: go on, up to three times as long, until some webhooks were.
    hard_stop = time.monotonic() + 3 * args.seconds

    def sending() -> bool:
        now = time.monotonic()
        return now < stop_at or (len(accepted) < MIN_ACCEPTED and now < hard_stop)

    def sender() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while sending():
            msg_id = f"msg_{uuid.uuid4().hex}"
            body = json.dumps({"type": "bench.fault", "data": {"step_seconds": 0.01}})
            headers = {
                "Content-Type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": webhook.sign(msg_id, datetime.now(UTC), body),
            }
            try:
                conn.request("POST", "/hooks/fault/", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status, payload = 0, b""
            with lock:
                answers[status] += 1
                if status == 202:
                    accepted.append(json.loads(payload)["event_id"])
            if status == 503:
                time.sleep(0.05)  # a sender backs off, as real ones do

    threads = [threading.Thread(target=sender) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    restarts = 0
    while time.monotonic() + args.every + args.down < stop_at:
        time.sleep(args.every)
        stack.postgres.restart(down_for=args.down)
        restarts += 1
    for thread in threads:
        thread.join()
    answers["restarts"] = 0  # keep the Counter numeric; restarts are printed separately
    del answers["restarts"]
    print(f"PostgreSQL restarts: {restarts}")
    return answers, accepted


if __name__ == "__main__":
    main()
