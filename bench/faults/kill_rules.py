#!/usr/bin/env python3
"""kill -9 a random worker process every few seconds while events flow through three rules.

Two Celery workers (prefork, 2 children each) and a beat (the sweep, every second) on a Redis
and a database of their own route events to a threshold rule (3 failed logins per user), an
absence rule (an order not paid within 20 s) and an aggregate rule (the count of payments per
shop per 2 s window); every --every seconds one random worker process is killed with SIGKILL
and a dead main process is replaced. Then the kills stop and the rules are given time to close
every window.

    .venv/bin/python bench/faults/kill_rules.py [--users 300] [--orders 300] [--every 3]
    .venv/bin/python bench/faults/kill_rules.py --smoke

Exactly once, none missed: one account.suspicious per user, one order.unpaid per unpaid order
and none for a paid one, and the aggregate windows' counts adding up to the payments made
(a window counted twice or lost shows as a different sum). Exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import table, wait_until
from bench.faults.harness import broken, fault_stack, query, scalar

RULES = [
    {
        "name": "fault-logins",
        "kind": "threshold",
        "event": "fault.login_failed",
        "correlate": "data.user",
        "count": 3,
        "within": "1h",
        "emit": {"type": "fault.suspicious"},
    },
    {
        "name": "fault-unpaid",
        "kind": "absence",
        "match": [{"event": "fault.order_created"}, {"event": "fault.order_paid"}],
        "correlate": "data.order",
        "within": "20s",
        "emit": {"type": "fault.unpaid"},
    },
    {
        "name": "fault-payments",
        "kind": "aggregate",
        "event": "fault.payment",
        "correlate": "data.shop",
        "function": "count",
        "every": "2s",
        "emit": {"type": "fault.payments"},
    },
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--every", type=float, default=3.0, help="seconds between kills")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CI check")
    args = parser.parse_args()
    if args.smoke:
        args.users, args.orders, args.every = 20, 20, 0.7

    with fault_stack("bench-rules-kill-") as stack:
        from events.services import emit
        from rules.services import rule_save

        for definition in RULES:
            rule_save(definition=definition)
        stack.start_processes()
        kills = {"main": 0, "child": 0}
        logins = [{"user": f"u{n}"} for n in range(args.users) for _ in range(3)]
        payments = [{"shop": f"s{n % 7}", "n": n} for n in range(args.users * 2)]
        work = [("fault.login_failed", d) for d in logins] + [
            ("fault.payment", d) for d in payments
        ]
        work += [("fault.order_created", {"order": n}) for n in range(args.orders)]
        random.shuffle(work)
        next_kill = time.monotonic() + args.every
        # Every other order is paid once its creation has been routed (an absence rule needs
        # the order of the two: a payment routed before its order pays no open order).
        to_pay = set(range(0, args.orders, 2))
        for n, (event_type, data) in enumerate(work):
            emit(event_type, data)
            if n % 20 == 0:
                time.sleep(0.02)  # a stream, not one burst
                _pay_routed(emit, to_pay)
            if time.monotonic() >= next_kill:
                kills[stack.kill_random_worker_process()] += 1
                time.sleep(0.3)
                stack.revive_workers()
                next_kill = time.monotonic() + args.every
        paid = sorted(set(range(0, args.orders, 2)))
        deadline = time.monotonic() + 120  # bounded, whatever happens
        while to_pay and time.monotonic() < deadline:
            stack.revive_workers()
            _pay_routed(emit, to_pay)
            time.sleep(0.2)
        _settle(stack)
        ok = _report(args, kills, paid, len(payments), stack.exits)
    sys.exit(0 if ok else 1)


def _pay_routed(emit, to_pay: set[int]) -> None:
    """Pay the orders of ``to_pay`` whose creation has been routed (and forget them)."""
    routed = query(
        "SELECT (data->>'order')::int FROM events_event WHERE type = 'fault.order_created' "
        "AND routed_at IS NOT NULL AND (data->>'order')::int = ANY(%s)",
        [sorted(to_pay)],
    )
    for (order,) in routed:
        emit("fault.order_paid", {"order": order})
        to_pay.discard(order)


def _settle(stack) -> None:
    """Every event routed and every partial match and window closed."""

    def settled() -> bool:
        stack.revive_workers()
        unrouted = scalar("SELECT count(*) FROM events_event WHERE routed_at IS NULL")
        open_keys = scalar("SELECT count(*) FROM rules_rulekey WHERE opened_at IS NOT NULL")
        return unrouted == 0 and open_keys == 0

    wait_until(settled, 180, "the rules to close every window", 0.5)


def _report(args, kills: dict[str, int], paid: list[int], payments: int, exits: int) -> bool:
    suspicious = scalar("SELECT count(*) FROM events_event WHERE type = 'fault.suspicious'")
    suspicious_users = scalar(
        "SELECT count(DISTINCT subject) FROM events_event WHERE type = 'fault.suspicious'"
    )
    short_causes = scalar(
        "SELECT count(*) FROM (SELECT e.id FROM events_event e LEFT JOIN rules_eventcause c "
        "ON c.derived_id = e.id WHERE e.type = 'fault.suspicious' GROUP BY e.id "
        "HAVING count(c.id) <> 3) AS t"
    )
    # Deadlines run from when a worker routed the order: a payment a kill held back for longer
    # than the deadline came too late, and its order is rightly reported unpaid.
    late = scalar(
        "SELECT count(*) FROM events_event c JOIN events_event p ON p.type = 'fault.order_paid' "
        "AND p.data->'order' = c.data->'order' WHERE c.type = 'fault.order_created' "
        "AND p.routed_at > c.routed_at + interval '20 seconds'"
    )
    unpaid = scalar("SELECT count(*) FROM events_event WHERE type = 'fault.unpaid'")
    unpaid_orders = scalar(
        "SELECT count(DISTINCT subject) FROM events_event WHERE type = 'fault.unpaid'"
    )
    wrongly = (
        scalar(
            "SELECT count(*) FROM events_event WHERE type = 'fault.unpaid' AND subject = ANY(%s)",
            [[str(order) for order in paid]],
        )
        - late
    )
    counted = scalar(
        "SELECT coalesce(sum((data->>'value')::int), 0) FROM events_event "
        "WHERE type = 'fault.payments'"
    )
    expected_unpaid = args.orders - len(paid) + late
    rows = [
        ("worker main processes killed", kills["main"]),
        ("pool children killed", kills["child"]),
        ("workers that exited by themselves", exits),
        ("threshold: users with 3 failed logins", args.users),
        ("threshold: derived events (users)", f"{suspicious} ({suspicious_users})"),
        ("threshold: derived events without exactly 3 causes", short_causes),
        ("absence: orders never paid", args.orders - len(paid)),
        ("absence: orders paid after the deadline", late),
        ("absence: derived events (orders)", f"{unpaid} ({unpaid_orders})"),
        ("absence: derived events for an order paid in time", wrongly),
        ("aggregate: payments", payments),
        ("aggregate: payments counted over all windows", counted),
    ]
    print(f"kill -9 a random worker process every {args.every:g}s during a rules workload")
    print(table(["", "count"], rows))
    ok = True
    if suspicious != args.users or suspicious_users != args.users or short_causes:
        ok = broken(f"threshold: {suspicious} derived events for {args.users} users")
    if unpaid != expected_unpaid or unpaid_orders != expected_unpaid or wrongly:
        ok = broken(f"absence: {unpaid} derived events for {expected_unpaid} unpaid orders")
    if counted != payments:
        ok = broken(f"aggregate: {counted} payments counted of {payments}")
    if exits:
        ok = broken(f"{exits} worker(s) exited by themselves")
    if ok:
        print("OK: every derived event emitted exactly once, none missed")
    return ok


if __name__ == "__main__":
    main()
