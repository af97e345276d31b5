"""Test workflows inside pytest with time skipped: ``WorkflowHarness`` and pytest fixtures.

The harness runs the real engine against the test database, in the test's own thread: every
"advance run" and "run branch" message is queued in memory and executed by ``run_until_idle``;
durable timers are fired at once by moving the engine's clock to the next due time. Actions
and steps can be replaced by fakes. Enable the fixtures in a conftest.py::

    pytest_plugins = ["automation.testing"]

    def test_onboarding(workflow_harness, django_user_model):
        run = workflow_harness.start("onboard-user", {"email": "a@example.com"})
        workflow_harness.fake("send-welcome", returns={"sent": True})
        workflow_harness.run_until_idle()          # 3-day sleeps pass in milliseconds
        assert workflow_harness.refresh(run).status == "succeeded"
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import TestCase

from approvals.services import approvals_remind_due
from automation.commands import run_retry
from automation.control import run_pause, run_rerun, run_resume
from automation.engine import attempts, branches, clock, dispatch, executor, leases, sweeps
from automation.engine.durations import parse_duration
from automation.engine.runs import run_cancel, run_start
from automation.models import Run, RunStatus, Timer

__all__ = ["WorkflowHarness", "clock_fixture", "workflow_harness"]


class _InMemoryBackend:
    def __init__(self) -> None:
        self.queue: deque[tuple[str, tuple[str, ...]]] = deque()

    def advance(self, run_id: str, priority: int = 0) -> None:
        self.queue.append(("advance", (run_id,)))

    def branch(self, run_id: str, step_id: str) -> None:
        self.queue.append(("branch", (run_id, step_id)))

    def route(self, event_id: str) -> None:
        self.queue.append(("route", (event_id,)))


class WorkflowHarness:
    """Drive runs to completion in a test. Use as a context manager (or the fixture)."""

    def __init__(self) -> None:
        self.backend = _InMemoryBackend()
        self.fakes: dict[str, Callable[..., Any]] = {}
        self.calls: dict[str, int] = {}
        self._previous_backend: Any = None
        self._previous_router: Any = None
        self._previous_interceptor: Any = None

    def __enter__(self) -> WorkflowHarness:
        from events import publisher

        self._previous_backend = dispatch.set_backend(self.backend)
        self._previous_router = publisher.set_router(self.backend.route)
        self._previous_interceptor = attempts.set_interceptor(self._intercept)
        return self

    def __exit__(self, *exc: Any) -> None:
        from events import publisher

        dispatch.set_backend(self._previous_backend)
        publisher.set_router(self._previous_router)
        attempts.set_interceptor(self._previous_interceptor)
        clock.reset()

    # --- fakes ----------------------------------------------------------------------------------

    def fake(self, name: str, returns: Any = None, *, raises: BaseException | None = None) -> None:
        """Replace the step with this id, or the action with this name, by a fake that returns
        ``returns`` (or calls it, if callable, with the step's arguments) or raises ``raises``."""

        def fake_fn(*args: Any, **kwargs: Any) -> Any:
            if raises is not None:
                raise raises
            return returns(*args, **kwargs) if callable(returns) else returns

        self.fakes[name] = fake_fn

    def _intercept(self, step_id: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        self.calls[step_id] = self.calls.get(step_id, 0) + 1
        action_name = getattr(fn, "action_name", None)
        return self.fakes.get(step_id) or (action_name and self.fakes.get(action_name)) or fn

    # --- driving --------------------------------------------------------------------------------

    def _committed(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` and run the on-commit callbacks it registers, as a commit would (a test
        wrapped in a transaction never commits)."""
        with TestCase.captureOnCommitCallbacks(execute=True):
            return fn(*args, **kwargs)

    def start(
        self,
        workflow: str,
        input: dict[str, Any] | None = None,
        *,
        drain: bool = True,
        **options: Any,
    ) -> Run:
        """Start a run (as ``run_start`` does) and drive it until it waits or ends (with
        ``drain=False``, its first message stays queued: see ``deliver_next``)."""
        run = self._committed(run_start, workflow=workflow, input=input, **options)
        self._drain_if(drain)
        return run

    def emit(
        self,
        type: str,
        data: dict[str, Any] | None = None,
        *,
        drain: bool = True,
        **meta: Any,
    ) -> Any:
        """Store an event as application code would, route it, and drive what it started."""
        from events.services import emit

        event = self._committed(emit, type, data or {}, **meta)
        self._drain_if(drain)
        return event

    def decide(
        self,
        run: Run,
        step_id: str,
        decision: str,
        *,
        user: Any,
        comment: str = "",
        values: dict[str, Any] | None = None,
        drain: bool = True,
    ) -> Any:
        """Decide the approval of ``step_id`` as ``user`` (filling in its fields with
        ``values``), then drive the run on. Raises what ``approval_decide`` raises
        (AlreadyDecided when it was decided first)."""
        from approvals.models import Approval
        from approvals.services import approval_decide

        approval = Approval.objects.filter(run=run, step_id=step_id).first()  # the latest ask
        self._committed(
            approval_decide,
            approval=approval,
            user=user,
            decision=decision,
            comment=comment,
            values=values,
        )
        self._drain_if(drain)
        return approval

    def cancel(self, run: Run, *, drain: bool = True) -> Run:
        """Cancel the run as an operator does (``run_cancel``), then drive it to its end."""
        run = self._committed(run_cancel, run=run)
        self._drain_if(drain)
        return run

    def retry(self, run: Run, *, drain: bool = True) -> Run:
        """Retry a failed run from its failed step as an operator does (``run_retry``)."""
        run = self._committed(run_retry, run=run)
        self._drain_if(drain)
        return run

    def pause(self, run: Run, *, user: Any, drain: bool = True) -> Run:
        """Pause the run as an operator does (``run_pause``)."""
        run = self._committed(run_pause, run=run, user=user)
        self._drain_if(drain)
        return run

    def resume(self, run: Run, *, user: Any, drain: bool = True) -> Run:
        """Resume a paused run as an operator does (``run_resume``), then drive it on."""
        run = self._committed(run_resume, run=run, user=user)
        self._drain_if(drain)
        return run

    def rerun(self, run: Run, from_step: str, *, user: Any, drain: bool = True) -> Run:
        """Rerun the run from ``from_step`` as an operator does (``run_rerun``)."""
        run = self._committed(run_rerun, run=run, from_step=from_step, user=user)
        self._drain_if(drain)
        return run

    def drain(self) -> int:
        """Execute queued messages (and the ones they queue) until none is left."""
        handled = 0
        while self.backend.queue:
            self.deliver_next()
            handled += 1
        return handled

    def _drain_if(self, drain: bool) -> None:
        if drain:
            self.drain()

    # --- the broker's and the workers' misbehaviour ---------------------------------------------

    @property
    def queued(self) -> list[tuple[str, tuple[str, ...]]]:
        """The messages waiting for a worker, oldest first: ("advance", (run_id,)), ("branch",
        (run_id, step_id)) or ("route", (event_id,))."""
        return list(self.backend.queue)

    def deliver_next(self, *, times: int = 1) -> tuple[str, tuple[str, ...]] | None:
        """Execute the oldest queued message ``times`` times (a broker delivers a message again
        when a worker's acknowledgement is lost). Returns it, or None when none is queued."""
        if not self.backend.queue:
            return None
        message = self.backend.queue.popleft()
        for _ in range(times):
            self._execute(*message)
        return message

    def worker_dies(self) -> tuple[str, tuple[str, ...]] | None:
        """A worker takes the oldest queued message and dies: an "advance" leaves its run
        RUNNING under a lease nobody renews (the sweep takes it back once the lease expires,
        see ``expire_leases``); other messages are lost (the sweeps send them again)."""
        if not self.backend.queue:
            return None
        message = self.backend.queue.popleft()
        what, args = message
        if what == "advance":
            self._committed(leases.claim, args[0], f"dead-worker:{uuid.uuid4().hex[:8]}")
        return message

    def expire_leases(self) -> None:
        """Move the clock past every lease (as if the workers holding them were dead), sweep
        and drain: runs and branches left by dead workers are taken back and run again."""
        wait = max(settings.AUTOMATION_LEASE_SECONDS, settings.AUTOMATION_REDISPATCH_SECONDS)
        self.advance_time(timedelta(seconds=wait + 1))

    def deliver(self, run: Run) -> bool:
        """Execute the queued "advance" message of ``run`` now, ahead of the messages queued
        before it (to test an outcome against every order the broker may deliver in). False
        when none is queued for it."""
        message = ("advance", (str(run.id),))
        if message not in self.backend.queue:
            return False
        self.backend.queue.remove(message)
        self._committed(executor.run_advance, str(run.id))
        return True

    def _execute(self, what: str, args: tuple[str, ...]) -> None:
        from events.routing import event_route_and_advance

        if what == "advance":
            self._committed(executor.run_advance, args[0])
        elif what == "branch":
            self._committed(branches.execute_branch, *args)
        else:
            self._committed(event_route_and_advance, event_id=args[0])

    # --- time -----------------------------------------------------------------------------------

    def advance_time(self, duration: str | float | timedelta, *, drain: bool = True) -> None:
        """Move the clock forward, fire what fell due, and run what that woke."""
        clock.advance(parse_duration(duration))
        self.tick(drain=drain)

    def tick(self, *, drain: bool = True) -> None:
        """One sweep (timers, recoveries), one run of approvals' reminders and a drain, without
        moving the clock: what beat would have run by then."""
        self._committed(sweeps.sweep)
        self._committed(approvals_remind_due)
        self._drain_if(drain)

    def run_until_idle(self, *, max_skip: str | float | timedelta = "365d") -> None:
        """Drain, then skip to each next timer and fire it, until nothing is due within
        ``max_skip``. Runs still waiting afterwards wait for events or decisions."""
        limit = clock.now() + parse_duration(max_skip)
        self.drain()
        while True:
            timer = (
                Timer.objects.filter(fired_at__isnull=True, due_at__lte=limit)
                .order_by("due_at")
                .first()
            )
            if timer is None:
                return
            if timer.due_at > clock.now():
                clock.advance(timer.due_at - clock.now())
            self.tick()

    def refresh(self, run: Run) -> Run:
        run.refresh_from_db()
        return run

    def result(self, run: Run) -> Any:
        """The run's output once it succeeded; AssertionError with its error otherwise."""
        run = self.refresh(run)
        if run.status != RunStatus.SUCCEEDED:
            raise AssertionError(f"run {run.id} is {run.status}: {run.error or run.waiting_for}")
        return run.output


@pytest.fixture
def workflow_harness(db: Any) -> Iterator[WorkflowHarness]:
    """A WorkflowHarness bound to the test database."""
    with WorkflowHarness() as harness:
        yield harness


@pytest.fixture(name="clock")
def clock_fixture() -> Iterator[Any]:
    """The engine clock; ``clock.advance(timedelta)`` moves durable time forward."""
    yield clock
    clock.reset()
