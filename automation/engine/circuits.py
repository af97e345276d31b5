"""Circuit breakers: stop calling an action (or a host) that keeps failing, and let one probe
call find out when it works again.

A circuit is closed (calls go), open (no call goes until ``retry_at``) or half-open (one probe
call is out; the others wait). ``failures`` failures within ``within`` open it for
``open_for``; then the first step to reach it claims the probe (one conditional UPDATE, so
exactly one worker wins); the probe's success closes it, its failure opens it again.

The state is a ``Circuit`` row that every worker reads and changes, never a copy in a process,
so a circuit opened by one worker holds back the calls of all of them. A step that meets an
open circuit does not call: it waits (a Timer) until the circuit may be probed, and that wait
counts neither as a failure nor as an attempt.

Cost on the hot path: a step whose action has no circuit reads nothing; one with a circuit
reads its row once by primary key; a failure writes it (in a short transaction), and a success
writes it only when it ends failures counted before it or a probe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from automation.engine import clock
from automation.engine.circuitspec import FIELDS, CircuitPolicy
from automation.engine.errors import WorkflowError
from automation.models import Circuit, StepRecord, StepStatus, Timer

logger = logging.getLogger(__name__)

State = Circuit.State
DEFAULTS: dict[str, Any] = {"failures": 5, "within": "1m", "open_for": "30s"}
MAX_KEY = 255


@dataclass(frozen=True)
class Breaker:
    """The circuit a step's call goes through: its key and its policy."""

    key: str
    policy: CircuitPolicy


def settings_value() -> dict[str, Any]:
    """The ``AUTOMATION_CIRCUIT`` setting with its defaults filled in."""
    value = dict(getattr(settings, "AUTOMATION_CIRCUIT", None) or {})
    return {**DEFAULTS, "actions": [], **value}


def default_policy() -> CircuitPolicy:
    value = settings_value()
    return CircuitPolicy.from_value({key: value[key] for key in FIELDS})


def breaker_for(
    action: str,
    declared: bool | dict[str, Any] | None,
    step: bool | dict[str, Any] | None,
    key: str | None,
) -> Breaker | None:
    """The breaker a call of ``action`` goes through, or None. The step's ``circuit`` wins
    over the action's ``@action(circuit=...)``, which wins over the setting's ``actions``
    list; True means the settings' thresholds, a dict overrides some of them, False none."""
    configured = step if step is not None else declared
    if configured is None:
        listed = settings_value()["actions"]
        configured = "*" in listed or action in listed
    if configured is False:
        return None
    try:
        policy = default_policy()
        if isinstance(configured, dict):
            policy = CircuitPolicy.from_value(configured, policy)
    except ValueError as exc:
        raise WorkflowError(f"circuit of action {action!r}: {exc}") from exc
    return Breaker(key=(key or action)[:MAX_KEY], policy=policy)


# --- the gate a call goes through -----------------------------------------------------------


@dataclass
class Gate:
    """What ``enter`` found: the call may go (``blocked_until`` None), as the probe or not."""

    breaker: Breaker
    failures: int = 0
    probe: bool = False
    blocked_until: datetime | None = None

    def failed(self) -> None:
        """Count a failed call; open the circuit when it was the probe or one too many."""
        now = clock.now()
        policy, key = self.breaker.policy, self.breaker.key
        if self.probe:
            retry_at = now + policy.open_for
            reopened = Circuit.objects.filter(key=key, state=State.HALF_OPEN).update(
                state=State.OPEN, opened_at=now, retry_at=retry_at
            )
            if reopened:
                logger.warning(
                    "circuit %s: the probe failed; open until %s", key, retry_at.isoformat()
                )
            return
        with transaction.atomic():
            circuit, _ = Circuit.objects.select_for_update().get_or_create(key=key)
            if circuit.state != State.CLOSED:  # opened meanwhile by another worker
                return
            fresh = circuit.window_start is None or now - circuit.window_start > policy.within
            circuit.failures = 1 if fresh else circuit.failures + 1
            if fresh:
                circuit.window_start = now
            if circuit.failures >= policy.failures:
                circuit.state = State.OPEN
                circuit.opened_at = now
                circuit.retry_at = now + policy.open_for
                logger.warning(
                    "circuit %s: %d failures within %s; open until %s",
                    key,
                    circuit.failures,
                    policy.within,
                    circuit.retry_at.isoformat(),
                )
            circuit.save()

    def succeeded(self) -> None:
        """A call worked: a probe closes the circuit; failures counted before it are forgiven."""
        if self.probe:
            if _close(Circuit.objects.filter(key=self.breaker.key, state=State.HALF_OPEN)):
                wake_waiting(self.breaker.key)
        elif self.failures:
            _close(Circuit.objects.filter(key=self.breaker.key, state=State.CLOSED))


def _close(circuits: Any) -> int:
    return circuits.update(
        state=State.CLOSED, failures=0, window_start=None, opened_at=None, retry_at=None
    )


def enter(breaker: Breaker, timeout: float | None = None) -> Gate:
    """Whether a call may go through ``breaker`` now. At most one worker gets the probe of a
    circuit whose cool-down is over (the others are blocked until the probe is given up)."""
    row = (
        Circuit.objects.filter(key=breaker.key).values_list("state", "failures", "retry_at").first()
    )
    if row is None or row[0] == State.CLOSED:
        return Gate(breaker, failures=row[1] if row else 0)
    state, _, retry_at = row
    now = clock.now()
    if retry_at is not None and retry_at > now:
        return Gate(breaker, blocked_until=retry_at)
    # The cool-down is over (or a probe was lost): claim the probe. It is given up after the
    # call's timeout, and never sooner than the cool-down, so a slow probe is not doubled.
    probe_for = max(breaker.policy.open_for, timedelta(seconds=(timeout or 0) + 5))
    claimed = Circuit.objects.filter(key=breaker.key, state=state, retry_at=retry_at).update(
        state=State.HALF_OPEN, retry_at=now + probe_for
    )
    if claimed:
        return Gate(breaker, probe=True)
    return Gate(breaker, blocked_until=now + probe_for)


def waiting_reason(key: str, until: datetime) -> str:
    """What the run page says while a step waits for an open circuit."""
    return f"waiting: circuit open for {key} until {timezone.localtime(until):%H:%M:%S}"


def waiting_note(key: str, until: datetime) -> dict[str, Any]:
    """The error a step waiting for an open circuit shows (it names the circuit, so closing
    the circuit finds the steps to wake)."""
    return {
        "type": "CircuitOpen",
        "message": waiting_reason(key, until),
        "circuit": key,
        "retryable": True,
    }


def wake_waiting(key: str) -> int:
    """Make the steps waiting for the circuit ``key`` due now (the next sweep wakes their
    runs) instead of at the end of the cool-down. How many there were."""
    now = clock.now()
    waiting = list(
        StepRecord.objects.filter(
            status=StepStatus.WAITING, error__type="CircuitOpen", error__circuit=key
        ).values_list("run_id", "step_id", "next_attempt_at")
    )
    for run_id, step_id, due in waiting:
        StepRecord.objects.filter(
            run_id=run_id, step_id=step_id, status=StepStatus.WAITING, next_attempt_at=due
        ).update(next_attempt_at=now)
        Timer.objects.filter(
            run_id=run_id, step_id=step_id, due_at=due, fired_at__isnull=True
        ).update(due_at=now)
    return len(waiting)


# --- operators ------------------------------------------------------------------------------


def close(key: str) -> bool:
    """Close the circuit ``key`` now (an operator knows the service is back) and wake the
    steps waiting for it. Whether it existed."""
    if not _close(Circuit.objects.filter(key=key)):
        return False
    wake_waiting(key)
    return True
