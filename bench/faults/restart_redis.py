#!/usr/bin/env python3
"""Restart Redis (the broker) every few seconds while 2,000 runs are started and go through.

A Redis of our own with no persistence, so each restart also throws away every queued message:
the worst case for the broker. Events are emitted at a steady --rate while two workers run;
every --every seconds Redis is killed and started again after --down seconds. Work whose
message was lost is found by the sweeps (unrouted events, pending runs not advanced).

    .venv/bin/python bench/faults/restart_redis.py [--runs 2000] [--every 5] [--down 1]
    .venv/bin/python bench/faults/restart_redis.py --smoke

Prints runs started, completed, lost, stuck, steps recorded twice and workers that exited by
themselves; exits 1 unless every accepted event's run completed with each step recorded once
and no worker exited (a worker survives a broker restart on its own: automation.lib.broker).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.faults.harness import fault_stack, report, settle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=40.0, help="events per second")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between restarts")
    parser.add_argument("--down", type=float, default=1.0, help="seconds Redis stays down")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CI check")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.rate, args.every, args.down = 60, 30.0, 0.7, 0.5

    # Workers as the Procfile starts them (gossip, mingle and heartbeat on: more channels that
    # a broker restart tears down), since the promise is for a Procfile run by hand.
    with fault_stack("bench-redis-", procfile=True) as stack:
        from events.services import emit

        stack.start_processes()
        started = time.monotonic()
        next_restart = started + args.every
        restarts = 0
        for i in range(args.runs):
            # Store first: emit commits the event, then tries to publish "route it" (which
            # fails while Redis is down; the unrouted-events sweep routes it later).
            emit("bench.fault", {"i": i, "step_seconds": 0.01})
            stack.revive_workers()  # counts a worker that exited by itself: a failure
            now = time.monotonic()
            if now >= next_restart:
                stack.redis.restart(down_for=args.down)
                restarts += 1
                next_restart = time.monotonic() + args.every
            delay = started + (i + 1) / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        settle(args.runs, timeout=90 + args.runs * 0.05, stack=stack)
        ok = report(
            f"restart Redis every {args.every:g}s ({args.down:g}s down, queue lost each time) "
            f"during {args.runs} runs",
            args.runs,
            [("Redis restarts", restarts)],
            stack=stack,
        )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
