#!/usr/bin/env python3
"""kill -9 a random worker process every few seconds while 1,000 runs go through.

Two Celery workers (prefork, 2 children each) on a Redis and a database of their own; every
--every seconds one random worker process (a main process or a pool child, often mid-step) is
killed with SIGKILL, and a dead main process is replaced as a supervisor would. Each run is 3
steps of --step-seconds. Then the kills stop and the runs are given time to finish.

    .venv/bin/python bench/faults/kill_workers.py [--runs 1000] [--every 3]
    .venv/bin/python bench/faults/kill_workers.py --smoke

Prints runs started, completed, lost, stuck and steps recorded twice; exits 1 unless all runs
completed with each step recorded once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.faults.harness import fault_stack, report, scalar, settle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--every", type=float, default=3.0, help="seconds between kills")
    parser.add_argument("--step-seconds", type=float, default=0.05)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CI check")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.every = 24, 0.7

    with fault_stack("bench-kill-") as stack:
        from events.services import emit

        for i in range(args.runs):
            emit("bench.fault", {"i": i, "step_seconds": args.step_seconds})
        stack.start_processes()
        kills = {"main": 0, "child": 0}
        deadline = time.monotonic() + 40 * args.runs  # bounded, whatever happens
        while time.monotonic() < deadline:
            time.sleep(args.every)
            done = scalar(
                "SELECT count(*) FROM automation_run WHERE status IN "
                "('succeeded','failed','cancelled')"
            )
            if done >= args.runs * 0.9:
                break  # the last tenth finishes in peace
            kills[stack.kill_random_worker_process()] += 1
            time.sleep(0.5)
            stack.revive_workers()
        settle(args.runs, timeout=60 + args.runs * 0.1, stack=stack)
        ok = report(
            f"kill -9 a random worker process every {args.every:g}s during {args.runs} runs",
            args.runs,
            [("main processes killed", kills["main"]), ("pool children killed", kills["child"])],
            stack=stack,
        )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
