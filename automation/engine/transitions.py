"""Every change of a run's state, declared in one table: from which statuses, under which
further conditions, to which status, which fields it writes, and whether it is announced.

Nothing writes ``Run.status`` itself: the engine (leases, executor, sweeps, endings, runs)
and the operator commands call :func:`transition`, which makes the change with one
conditional UPDATE (the declared sources and guards are its WHERE clause) and, when a row
changed, announces it once the transaction commits (:mod:`automation.lifecycle`). An
undeclared move, or one another process made first, changes no row, so it cannot happen
twice. Two moves are made on a run not yet saved (:func:`prepare`): its creation announces
them.

The states of a run (``RunStatus``) and how each is reached:

- **pending**: runnable, an "advance" message is on its way. A run is created pending. It
  returns there when its worker lets go of it after replaying it too often (``release``), when
  its code is newer than the worker's (``defer``), when its worker died (``recover``), when
  what it waited for happened (``wake``), when a waiting or queued run is asked to cancel
  (``wake_to_cancel``, ``unqueue_to_cancel``), when an operator retries it (``retry``),
  resumes it (``resume``) or reruns it from a step (``rerun``).
- **running**: a worker holds its lease (``claim``; ``hold`` for a run its creator advances
  at once). Renewing the lease is no transition: leases.py extends it while a step runs.
- **waiting**: suspended on a timer, an event, an approval or a child; no worker (``suspend``;
  ``delay`` for a run its trigger's throttle or debounce holds back from its creation).
- **paused**: stopped by an operator; no worker (``pause`` for a pending or waiting run;
  ``request_pause`` asks a running one, which stops before its next step, ``stop_paused``,
  unless the request is withdrawn first, ``withdraw_pause``; ``hold_paused`` for a run
  created while its workflow is paused). It leaves by ``resume`` (to pending), by
  ``wake_to_cancel`` when cancelled, or by ``rerun``.
- **succeeded**, **failed**, **cancelled**: finished (``succeed``, ``fail``, ``cancel``, all
  through :func:`automation.engine.endings.run_end`; ``skip`` for a run its concurrency limit
  refuses at creation). Only ``retry`` (failed) and ``rerun`` leave a finished state. A
  finished run's lease is held only while a parent compensates it (``take_finished``, ``let_go``).

Moves that keep the status are here too, as guarded UPDATEs like the others: a wake-up
counted (``count_wakeup``), a cancel asked (``request_cancel``), a lost message sent again
(``redispatch``), a queued run given a free slot (``unqueue``). Only a move that keeps the
status may come from any status (``unqueue``, ``let_go``).

A move guarded by the lease (``lease_owner``) checks its source status as well, although the
holder of a lease always finds the run running: the table, not that reasoning, then says
which moves a run can make.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import F, Q
from django.db.models.functions import Coalesce

from automation import lifecycle
from automation.engine import clock, dispatch
from automation.models import ACTIVE_STATUSES, FINISHED_STATUSES, Run, RunStatus

__all__ = [
    "GIVEN",
    "LEASE_FREE",
    "NOW",
    "NOW_UNLESS_SET",
    "TRANSITIONS",
    "Transition",
    "prepare",
    "transition",
]


class _Marker:
    """A value in the table that is only known when the transition is made."""

    def __init__(self, meaning: str) -> None:
        self.meaning = meaning

    def __repr__(self) -> str:
        return self.meaning


#: The caller passes the value (as a keyword argument of the same name).
GIVEN = _Marker("given")
#: The time of the transition (one clock reading for every field of the move).
NOW = _Marker("now")
#: The time of the transition, unless the field already has a value.
NOW_UNLESS_SET = _Marker("now unless set")
#: A guard on ``lease_owner``: nobody holds the lease, or its holder's lease expired.
LEASE_FREE = _Marker("free or expired")

S = RunStatus
_RELEASED = {"lease_owner": "", "lease_expires_at": None}


@dataclass(frozen=True)
class Transition:
    name: str
    #: The statuses it moves from; None: any (only for moves that keep the status).
    sources: tuple[str, ...] | None
    #: The status it moves to; None: the status is kept.
    target: str | None
    #: Further conditions of the WHERE clause: field -> value, GIVEN or LEASE_FREE.
    guard: Mapping[str, Any] = field(default_factory=dict)
    #: The fields written with the status: field -> value, expression, GIVEN, NOW...
    writes: Mapping[str, Any] = field(default_factory=dict)
    #: Whether ``run_changed`` is sent (with the target, or the kept status).
    announce: bool = True
    #: Whether an "advance" message is sent after the announcement.
    dispatch: bool = False
    #: Made on a run about to be created (:func:`prepare`), not by an UPDATE.
    new_run: bool = False

    def __post_init__(self) -> None:
        if self.announce and self.target is None and len(self.sources or ()) != 1:
            raise ValueError(f"{self.name}: announcing a kept status needs exactly one source")

    @property
    def announced_status(self) -> str:
        return self.target or (self.sources or ("",))[0]


_ENDED = {
    "output": GIVEN,
    "error": GIVEN,
    "finished_at": NOW,
    **_RELEASED,
    "waiting_for": "",
    "pause_requested": False,
    # Whoever is about to suspend the run on an old reading sees that it moved.
    "wakeups": F("wakeups") + 1,
}
_HELD = {"lease_owner": GIVEN}
_LEASED = {"lease_owner": GIVEN, "lease_expires_at": GIVEN}

# fmt: off
_TABLE = [
    # A worker takes the run. Not a queued one: its concurrency limit holds it back.
    Transition("claim", (S.PENDING,), S.RUNNING, guard={"queued": False},
               writes={**_LEASED, "started_at": NOW_UNLESS_SET}),
    # A run about to be created, taken by its creator, which advances it at once.
    Transition("hold", (S.PENDING,), S.RUNNING, writes={**_LEASED, "started_at": NOW},
               announce=False, new_run=True),
    # Woken too often while running: another delivery replays it later.
    Transition("release", (S.RUNNING,), S.PENDING, guard=_HELD, writes=_RELEASED,
               dispatch=True),
    # Its version is newer than this worker's code: the redispatch sweep sends it again.
    Transition("defer", (S.RUNNING,), S.PENDING, guard=_HELD,
               writes={**_RELEASED, "dispatched_at": NOW, "waiting_for": GIVEN}),
    # It reached a wait; unless something woke it since it was read (wakeups). Reaching a
    # wait is progress: earlier takeovers no longer count towards the dead letter.
    Transition("suspend", (S.RUNNING,), S.WAITING, guard={**_HELD, "wakeups": GIVEN},
               writes={**_RELEASED, "waiting_for": GIVEN, "recoveries": 0}),
    # The three ends, only through endings.run_end: it closes the run's open work (steps,
    # waits, approvals, timers, children) in the same transaction.
    # Not once a cancel was asked for: its parent may have closed the step that waited for
    # it, so nothing would undo what it did; the worker compensates and cancels instead.
    Transition("succeed", (S.RUNNING,), S.SUCCEEDED, guard={**_HELD, "cancel_requested": False},
               writes=_ENDED),
    Transition("fail", (S.RUNNING,), S.FAILED, guard=_HELD, writes=_ENDED),
    Transition("cancel", (S.RUNNING,), S.CANCELLED, guard=_HELD, writes=_ENDED),
    # Refused at creation by its concurrency limit ("skip").
    Transition("skip", (S.PENDING,), S.CANCELLED,
               writes={"finished_at": NOW, "error": GIVEN}, announce=False, new_run=True),
    # Held back at creation by its trigger's flow control (throttle, debounce): a timer
    # wakes it when its turn comes.
    Transition("delay", (S.PENDING,), S.WAITING, writes={"waiting_for": GIVEN},
               announce=False, new_run=True),
    # Its worker stopped renewing the lease (the sweep saw it expired, held by that owner).
    Transition("recover", (S.RUNNING,), S.PENDING, guard=_HELD,
               writes={**_RELEASED, "recoveries": F("recoveries") + 1, "dispatched_at": NOW},
               dispatch=True),
    # Its "advance" message was lost: the sweep sends it again.
    Transition("redispatch", (S.PENDING,), None, writes={"dispatched_at": NOW},
               announce=False, dispatch=True),
    # Something it may wait for happened: a worker about to suspend it replays instead.
    Transition("count_wakeup", ACTIVE_STATUSES, None, writes={"wakeups": F("wakeups") + 1},
               announce=False),
    # What it waited for happened.
    Transition("wake", (S.WAITING,), S.PENDING,
               writes={"waiting_for": "", "dispatched_at": NOW}, dispatch=True),
    # A slot of its concurrency limit is free.
    Transition("unqueue", None, None, guard={"queued": True},
               writes={"queued": False, "waiting_for": "", "dispatched_at": NOW},
               announce=False, dispatch=True),
    # An operator (or its parent's end) asks it to stop; a running one stops before its
    # next step, a waiting or queued one is made runnable to compensate and end.
    Transition("request_cancel", ACTIVE_STATUSES, None,
               writes={"cancel_requested": True, "wakeups": F("wakeups") + 1}, announce=False),
    Transition("wake_to_cancel", (S.WAITING, S.PAUSED), S.PENDING,
               writes={"dispatched_at": NOW, "paused_at": None, "held_by_workflow": False},
               dispatch=True),
    Transition("unqueue_to_cancel", (S.PENDING,), None, guard={"queued": True},
               writes={"queued": False, "dispatched_at": NOW}, dispatch=True),
    # An operator resumes it from the step that failed it.
    Transition("retry", (S.FAILED,), S.PENDING,
               writes={"error": None, "output": None, "finished_at": None, "recoveries": 0,
                       "cancel_requested": False, "waiting_for": "", "dispatched_at": NOW},
               dispatch=True),
    # An operator pauses it. A pending or waiting one (no worker) is paused at once: its
    # timers keep their due time, and what it waits for is recorded but wakes it only once
    # resumed. A running one is asked to, and its worker stops before its next step
    # ("stop_paused"), or the operator withdraws the request first.
    Transition("pause", (S.PENDING, S.WAITING), S.PAUSED, guard={"cancel_requested": False},
               writes={"paused_at": NOW, "paused_by": GIVEN, "held_by_workflow": GIVEN}),
    Transition("request_pause", (S.RUNNING,), None,
               guard={"cancel_requested": False, "pause_requested": False},
               writes={"pause_requested": True, "paused_by": GIVEN,
                       "held_by_workflow": GIVEN, "wakeups": F("wakeups") + 1}),
    Transition("withdraw_pause", (S.RUNNING,), None, guard={"pause_requested": True},
               writes={"pause_requested": False, "paused_by": None, "held_by_workflow": False}),
    Transition("stop_paused", (S.RUNNING,), S.PAUSED, guard=_HELD,
               writes={**_RELEASED, "pause_requested": False, "paused_at": NOW,
                       "waiting_for": ""}),
    # Created while its workflow is paused: it starts when the workflow resumes.
    Transition("hold_paused", (S.PENDING,), S.PAUSED,
               writes={"held_by_workflow": True, "paused_at": NOW, "waiting_for": GIVEN},
               announce=False, new_run=True),
    # An operator (or its workflow's resume) resumes it: it replays, and what became due or
    # happened while it was paused takes effect now.
    Transition("resume", (S.PAUSED,), S.PENDING,
               writes={"paused_at": None, "paused_by": None, "held_by_workflow": False,
                       "waiting_for": "", "dispatched_at": NOW}, dispatch=True),
    # An operator reruns it from a step: a new execution, the journal before the step kept.
    Transition("rerun", (*FINISHED_STATUSES, S.PAUSED), S.PENDING,
               guard={"lease_owner": LEASE_FREE},
               writes={"error": None, "output": None, "finished_at": None, "recoveries": 0,
                       "cancel_requested": False, "pause_requested": False, "paused_at": None,
                       "paused_by": None, "held_by_workflow": False, "waiting_for": "",
                       **_RELEASED, "execution": F("execution") + 1, "dispatched_at": NOW},
               dispatch=True),
    # A parent compensating this finished child holds its lease while it writes its journal.
    Transition("take_finished", FINISHED_STATUSES, None, guard={"lease_owner": LEASE_FREE},
               writes=_LEASED, announce=False),
    Transition("let_go", None, None, guard=_HELD, writes=_RELEASED, announce=False),
]
# fmt: on
TRANSITIONS: dict[str, Transition] = {t.name: t for t in _TABLE}


def transition(
    run_id: Any,
    name: str,
    *,
    workflow: str = "",
    now: datetime | None = None,
    before_announcing: Callable[[], None] | None = None,
    priority: int = 0,
    **given: Any,
) -> bool:
    """Make the transition ``name`` with one conditional UPDATE; ``given`` holds the values
    its table row leaves to the caller (guards and writes marked GIVEN). Returns False,
    changing nothing, when the run is no longer in a source status or fails a guard (another
    process got there first).

    When a row changed: ``before_announcing`` runs (what the move closes is announced before
    it), then the change is announced (``workflow``: the run's workflow name, "" where the
    caller knows only the id) and the run dispatched (with ``priority``, its trigger's), both
    once the transaction commits."""
    move = TRANSITIONS[name]
    if move.new_run:
        raise ValueError(f"{name!r} is made on a run about to be created: use prepare()")
    _check_given(move, given)
    now = now or clock.now()
    where = Q(id=run_id)
    if move.sources is not None:  # one source: "status = x", the statement it always was
        sources = move.sources
        where &= Q(status=sources[0]) if len(sources) == 1 else Q(status__in=sources)
    for key, value in move.guard.items():
        where &= _condition(key, value, given, now)
    changes: dict[str, Any] = {} if move.target is None else {"status": move.target}
    changes |= {key: _value(key, value, given, now) for key, value in move.writes.items()}
    if not Run.objects.filter(where).update(**changes):
        return False
    if before_announcing is not None:
        before_announcing()
    if move.announce:
        lifecycle.announce_run(run_id, move.announced_status, workflow=workflow)
    if move.dispatch:
        dispatch.advance(run_id, priority=priority)
    return True


def prepare(run: Run, name: str, *, now: datetime | None = None, **given: Any) -> None:
    """Make the transition ``name`` on ``run`` before it is first saved; its creation is
    announced, with this status."""
    move = TRANSITIONS[name]
    if not move.new_run:
        raise ValueError(f"{name!r} changes a saved run: use transition()")
    if move.sources is not None and run.status not in move.sources:
        raise ValueError(f"cannot {name} a {run.status} run (only {', '.join(move.sources)})")
    _check_given(move, given)
    now = now or clock.now()
    for key, value in move.writes.items():
        if value is NOW_UNLESS_SET:
            value = getattr(run, key) or NOW
        setattr(run, key, _value(key, value, given, now))
    if move.target is not None:
        run.status = move.target


def _check_given(move: Transition, given: Mapping[str, Any]) -> None:
    wanted = {key for key, value in move.guard.items() if value is GIVEN}
    wanted |= {key for key, value in move.writes.items() if value is GIVEN}
    if set(given) != wanted:
        raise TypeError(
            f"transition {move.name!r} takes {', '.join(sorted(wanted)) or 'no values'}; "
            f"got {', '.join(sorted(given)) or 'none'}"
        )


def _condition(key: str, value: Any, given: Mapping[str, Any], now: datetime) -> Q:
    if value is LEASE_FREE:
        return Q(**{key: ""}) | Q(lease_expires_at__lt=now)
    return Q(**{key: given[key] if value is GIVEN else value})


def _value(key: str, value: Any, given: Mapping[str, Any], now: datetime) -> Any:
    if value is GIVEN:
        return given[key]
    if value is NOW:
        return now
    if value is NOW_UNLESS_SET:
        return Coalesce(F(key), now)
    return value
