#!/usr/bin/env python3
"""Kill the process between commit and dispatch: the work is committed, its broker message is
never sent. The sweeps must find it (unrouted events, pending runs never advanced).

Each of --crashes forked processes commits one piece of work and is killed with SIGKILL at the
moment it would publish the message: a third emit an event (the "route it" message is lost), a
third start a run with ``run_start`` (the "advance it" message is lost), and a third emit an
event through the real publisher thread (events.publisher) and are killed right after the
commit, the route message still queued in the process or just sent. Then two workers and beat
run, and every run must complete, once.

    .venv/bin/python bench/faults/kill_before_dispatch.py [--crashes 200]
    .venv/bin/python bench/faults/kill_before_dispatch.py --smoke
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.faults.harness import broken, fault_stack, report, scalar, settle


class KillOnSend:
    """A dispatch backend that dies where the message would be sent (after the commit)."""

    def _die(self, *args: str) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    advance = branch = route = _die


def crash_once(n: int) -> None:
    from automation.engine import dispatch
    from automation.engine.runs import run_start
    from events import publisher
    from events.services import emit

    if n % 3 == 2:
        emit("bench.fault", {"i": n, "step_seconds": 0.01})
        os.kill(os.getpid(), signal.SIGKILL)  # the publisher thread may or may not have sent
    dispatch.set_backend(KillOnSend())
    publisher.set_router(KillOnSend().route)
    if n % 3:
        emit("bench.fault", {"i": n, "step_seconds": 0.01})
    else:
        run_start(workflow="bench-fault", input={"i": n, "step_seconds": 0.01})
    os._exit(3)  # not reached: the dispatch after commit kills this process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CI check")
    args = parser.parse_args()
    if args.smoke:
        args.crashes = 20

    with fault_stack("bench-dispatch-") as stack:
        from django.db import connections

        killed = 0
        for n in range(args.crashes):
            connections.close_all()  # the child opens its own connection
            pid = os.fork()
            if pid == 0:
                crash_once(n)
            _, status = os.waitpid(pid, 0)
            killed += os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        committed = scalar("SELECT count(*) FROM automation_run") + scalar(
            "SELECT count(*) FROM events_event WHERE routed_at IS NULL"
        )
        stack.start_processes()
        settle(args.crashes, timeout=60 + args.crashes * 0.2, stack=stack)
        ok = report(
            f"kill the process between commit and dispatch, {args.crashes} times",
            args.crashes,
            [
                ("processes killed at dispatch", killed),
                ("work committed before the kill", committed),
            ],
            stack=stack,
        )
        if ok and not killed == committed == args.crashes:
            ok = broken(f"{killed} killed and {committed} committed of {args.crashes} crashes")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
