"""The run state machine, proved with a model-based test: Hypothesis drives the real engine on the
real database through the testing harness (time skipped, one thread) with random sequences of
what users, operators, brokers and workers do, and checks after every step what the product
promises about run states.

Rules: start runs of small workflows (sequence with a sleep; saga with compensations and a step
that fails for runs marked broken; approval with quorum and timeout; wait_for_event with timeout
and lookback; parallel; child), deliver matching and non-matching events, move the clock, decide
approvals (two decisions before the run moves on, too), cancel, retry from the failed step,
deliver a message twice, let a worker die holding a run's lease and expire it; pause a run,
resume it, rerun it from its first step.

Invariants: a finished run has no open step, approval, wait or timer; each (run, step) is
recorded once and each step executed at most once per attempt of the run; compensations run at
most once each, in reverse order of completion, and all of them when a run fails or is cancelled;
nothing but compensations runs once a cancel was asked;
a decided approval never changes its decision; the API, the run page, the admin and the CLI show
the same status for a run and each of its steps; in the end, moving the clock past every deadline
brings every run to an end.

CI runs a fixed, bounded set of examples (``derandomize``); ``STATE_MACHINE_EXAMPLES=500`` (or
``make test-deep``) runs many more, with new random sequences each time.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from approvals.models import Approval
from approvals.services import AlreadyDecided
from automation.control import NotAllowedNow
from automation.engine.errors import NonRetryableError, WorkflowError
from automation.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    Run,
    RunStatus,
    StepRecord,
    StepStatus,
    Timer,
    Wait,
)
from automation.testing import WorkflowHarness
from tests.engine_app import state_workflows as wf

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("STATE_MACHINE_EXAMPLES", "0") or 0)
DEEP = EXAMPLES > 0
STEPS = int(os.environ.get("STATE_MACHINE_STEPS", "40"))
# Shrinking a long sequence on the real database can take many minutes; STATE_MACHINE_NO_SHRINK
# reports the first failing sequence as found.
PHASES = [Phase.generate, Phase.explain] if os.environ.get("STATE_MACHINE_NO_SHRINK") else None
MACHINE_SETTINGS = settings(
    max_examples=EXAMPLES or 20,
    phases=PHASES or list(Phase),
    stateful_step_count=STEPS,
    derandomize=not DEEP,  # CI: the same sequences on every run; deep runs explore new ones
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)

OPEN_STEP = (StepStatus.RUNNING, StepStatus.WAITING)
# Draining after every action hides the orders a broker may deliver in: mostly leave messages
# queued, for deliver_next, worker_dies and the other actions to interleave with.
LEAVE_QUEUED_MOSTLY = st.sampled_from([False, False, True])
WORKFLOWS = ["sm-sequence", "sm-saga", "sm-approval", "sm-wait", "sm-parallel", "sm-child"]
DURATIONS = [timedelta(minutes=1), timedelta(minutes=20), timedelta(minutes=45), timedelta(hours=2)]


class RunStates(RuleBasedStateMachine):
    """One example: a fresh savepoint in the test's transaction, rolled back at the end."""

    cast: dict[str, Any] = {}  # set by the test: the approvers and an admin client

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.harness = WorkflowHarness().__enter__()
        self.harness.fake("ship", returns=self._ship)
        wf.EXECUTIONS.clear()
        self.keys: dict[str, Any] = {}  # input key -> its latest run (child runs: "<key>-kid")
        self.run_ids: set[Any] = set()  # every run started, a retried parent's first child too
        self.broken: set[str] = set()  # keys whose "ship" step fails
        self.epoch: dict[str, int] = {}  # key -> index into EXECUTIONS where its attempt began
        self.cancelled_at: dict[str, int] = {}  # key -> index into EXECUTIONS at its cancel
        self.decided: dict[Any, tuple[str, Any]] = {}  # approval -> (status, decided_by)
        self.shown: dict[Any, Any] = {}  # run -> the state its views were last compared in
        self.steps_run = 0

    def teardown(self) -> None:
        try:
            self._everything_ends()
        finally:
            self.harness.__exit__(None, None, None)
            transaction.set_rollback(True)
            self._atomic.__exit__(None, None, None)

    # --- helpers --------------------------------------------------------------------------------

    def _ship(self, key: str) -> dict[str, str]:
        if key in self.broken:
            raise NonRetryableError(f"{key}: the warehouse refused it")
        return wf.act(key, "ship")

    def _runs(self, *statuses: str) -> list[Run]:
        runs = Run.objects.filter(id__in=self.run_ids).order_by("created_at", "id")
        return list(runs.filter(status__in=statuses) if statuses else runs)

    def _learn_children(self) -> None:
        """A retried parent starts a new child with the same key: the key follows the newest."""
        children = Run.objects.filter(parent_run_id__in=self.run_ids).order_by("created_at", "id")
        for child in children:
            key = child.input.get("key")
            if key and child.id not in self.run_ids:
                self.keys[key] = child.id
                self.run_ids.add(child.id)
                self.epoch.setdefault(key, len(wf.EXECUTIONS))

    def _drain_if(self, drain: bool) -> None:
        if drain:
            self.harness.drain()

    # --- rules: users and operators -------------------------------------------------------------

    @rule(
        workflow=st.sampled_from(WORKFLOWS),
        broken=st.booleans(),
        quorum=st.sampled_from([1, 2]),
        on_timeout=st.sampled_from(["reject", "approve"]),
        lookback=st.sampled_from([None, "1h"]),
        drain=LEAVE_QUEUED_MOSTLY,
    )
    def start(self, workflow, broken, quorum, on_timeout, lookback, drain):
        key = f"k{len(self.keys) + 1}"
        if broken:
            self.broken.add(key)
        data = {"key": key, "quorum": quorum, "on_timeout": on_timeout, "lookback": lookback}
        self.epoch[key] = len(wf.EXECUTIONS)
        run = self.harness.start(workflow, data, drain=drain)
        self.keys[key] = run.id
        self.run_ids.add(run.id)

    @rule(data=st.data(), matching=st.booleans(), drain=LEAVE_QUEUED_MOSTLY)
    def emit_reply(self, data, matching, drain):
        """A reply for a run (or a child) that waits, will wait, or never will (no match)."""
        known = [*sorted(self.keys), f"k{len(self.keys) + 1}", f"k{len(self.keys)}-kid"]
        key = data.draw(st.sampled_from(known)) if matching else "nobody"
        self.harness.emit("sm.reply", {"key": key}, drain=drain)

    @precondition(lambda self: Approval.objects.filter(status="pending").exists())
    @rule(data=st.data(), twice=st.booleans(), drain=LEAVE_QUEUED_MOSTLY)
    def decide(self, data, twice, drain):
        """One vote, or two votes by different people before the run moves on."""
        pending = list(Approval.objects.filter(status="pending").order_by("created_at", "id"))
        approval = data.draw(st.sampled_from(pending))
        names = st.sampled_from(sorted(self.cast["approvers"]))
        people = data.draw(st.lists(names, min_size=1 + twice, max_size=2, unique=True))
        for name in people:
            decision = data.draw(st.sampled_from(["approve", "reject"]))
            # Voted already, or decided by the other vote: refused, and nothing changes.
            with contextlib.suppress(AlreadyDecided, PermissionDenied):
                user = self.cast["approvers"][name]
                run, step_id = approval.run, approval.step_id
                self.harness.decide(run, step_id, decision, user=user, drain=False)
        self._drain_if(drain)

    @precondition(lambda self: self.keys)
    @rule(data=st.data(), drain=LEAVE_QUEUED_MOSTLY)
    def cancel(self, data, drain):
        run = Run.objects.get(id=self.keys[data.draw(st.sampled_from(sorted(self.keys)))])
        try:
            self.harness.cancel(run, drain=False)
        except WorkflowError:
            assert run.status in FINISHED_STATUSES  # only finished runs refuse a cancel
        self._learn_children()
        for cancelling in Run.objects.filter(id__in=self.keys.values(), cancel_requested=True):
            self.cancelled_at.setdefault(cancelling.input["key"], len(wf.EXECUTIONS))
        self._drain_if(drain)

    @precondition(lambda self: self.keys)
    @rule(data=st.data(), drain=LEAVE_QUEUED_MOSTLY)
    def fix_and_retry(self, data, drain):
        failed = self._runs(RunStatus.FAILED)
        if not failed:
            return
        run = data.draw(st.sampled_from(failed))
        key = run.input["key"]
        self.broken.discard(key)
        for retried in (key, f"{key}-kid"):  # a new attempt: steps (and a new child) run again
            self.epoch[retried] = len(wf.EXECUTIONS)
            self.cancelled_at.pop(retried, None)
        self.harness.retry(run, drain=drain)

    @precondition(lambda self: self.keys)
    @rule(data=st.data(), drain=LEAVE_QUEUED_MOSTLY)
    def pause(self, data, drain):
        run = Run.objects.get(id=self.keys[data.draw(st.sampled_from(sorted(self.keys)))])
        try:
            self.harness.pause(run, user=self.cast["admin"], drain=drain)
        except NotAllowedNow:  # only a finished, cancelling or paused run refuses a pause
            run.refresh_from_db()
            assert (
                run.status in (*FINISHED_STATUSES, RunStatus.PAUSED)
                or run.cancel_requested
                or run.pause_requested
            ), run.status

    @precondition(lambda self: self.keys)
    @rule(data=st.data(), drain=LEAVE_QUEUED_MOSTLY)
    def resume(self, data, drain):
        paused = self._runs(RunStatus.PAUSED) or Run.objects.filter(
            id__in=self.run_ids, pause_requested=True
        )
        if paused:
            self.harness.resume(data.draw(st.sampled_from(list(paused))), **self._admin(drain))

    @precondition(lambda self: self.keys)
    @rule(data=st.data(), drain=LEAVE_QUEUED_MOSTLY)
    def rerun_from_the_start(self, data, drain):
        """A finished or paused run is rerun from its first step: every step runs again (a
        rerun from a later step keeps the steps before it: test_pause_and_rerun.py)."""
        done = [r for r in self._runs(*FINISHED_STATUSES, RunStatus.PAUSED) if not r.parent_run_id]
        first = {r.id: _first_step(r) for r in done}
        done = [r for r in done if first[r.id]]
        if not done:
            return
        run = data.draw(st.sampled_from(done))
        key = run.input["key"]
        for again in (key, f"{key}-kid"):
            self.epoch[again] = len(wf.EXECUTIONS)
            self.cancelled_at.pop(again, None)
        self.harness.rerun(run, first[run.id], **self._admin(drain))

    def _admin(self, drain: bool) -> dict[str, Any]:
        return {"user": self.cast["admin"], "drain": drain}

    # --- rules: time, brokers and workers -------------------------------------------------------

    @rule(duration=st.sampled_from(DURATIONS), drain=LEAVE_QUEUED_MOSTLY)
    def advance_clock(self, duration, drain):
        self.harness.advance_time(duration, drain=drain)

    @precondition(lambda self: self.harness.queued)
    @rule(times=st.sampled_from([1, 2]))
    def deliver_next(self, times):
        """The broker delivers the oldest message (twice: a lost acknowledgement)."""
        self.harness.deliver_next(times=times)

    @precondition(lambda self: self.harness.queued)
    @rule()
    def worker_dies(self):
        self.harness.worker_dies()

    @rule()
    def expire_leases(self):
        self.harness.expire_leases()

    @rule()
    def drain(self):
        self.harness.drain()

    # --- invariants -----------------------------------------------------------------------------

    @invariant()
    def count_steps(self):
        self.steps_run += 1
        self._learn_children()

    @invariant()
    def finished_runs_leave_nothing_open(self):
        finished = [run.id for run in self._runs(*FINISHED_STATUSES)]
        open_steps = StepRecord.objects.filter(run_id__in=finished, status__in=OPEN_STEP)
        assert not list(open_steps.values_list("run_id", "step_id", "status"))
        pending = Approval.objects.filter(run_id__in=finished, status="pending")
        assert not list(pending.values_list("run_id", "step_id"))
        waits = Wait.objects.filter(run_id__in=finished, status=Wait.Status.OPEN)
        assert not list(waits.values_list("run_id", "step_id"))
        timers = Timer.objects.filter(run_id__in=finished, fired_at__isnull=True)
        assert not list(timers.values_list("run_id", "kind", "step_id"))

    @invariant()
    def each_step_runs_once_and_compensations_reverse(self):
        recorded = Counter(StepRecord.objects.values_list("run_id", "step_id"))
        assert [pair for pair, n in recorded.items() if n > 1] == []
        status = {run.input["key"]: run.status for run in self._runs()}
        workflow = {run.input["key"]: run.workflow.name for run in self._runs()}
        for key, start in self.epoch.items():
            done = [what for k, what in wf.EXECUTIONS[start:] if k == key]
            forward = [what for what in done if not what.startswith("undo:")]
            assert [w for w, n in Counter(forward).items() if n > 1] == [], (key, done)
            undone = [what.removeprefix("undo:") for what in done if what.startswith("undo:")]
            assert len(set(undone)) == len(undone), (key, done)
            undoable = [w for w in forward if w in wf.COMPENSATED.get(workflow.get(key), [])]
            expected = list(reversed(undoable))
            assert undone == expected[: len(undone)], (key, done)
            if status.get(key) in (RunStatus.FAILED, RunStatus.CANCELLED):
                assert undone == expected, (key, status[key], done)
            if status.get(key) == RunStatus.SUCCEEDED:
                assert undone == [], (key, done)

    @invariant()
    def nothing_starts_after_a_cancel(self):
        """Only compensations run once a run's cancel was asked (nothing runs concurrently
        here, so no step was already under way)."""
        for key, start in self.cancelled_at.items():
            late = [w for k, w in wf.EXECUTIONS[start:] if k == key and not w.startswith("undo:")]
            assert late == [], (key, late)

    @invariant()
    def decisions_never_change(self):
        for approval in Approval.objects.exclude(status="pending"):
            now = (approval.status, approval.decided_by_id)
            assert self.decided.setdefault(approval.pk, now) == now, approval

    @invariant()
    def every_view_shows_the_same_status(self):
        for run in self._runs():
            state = _journal_state(run)
            if self.shown.get(run.id) != state:
                _assert_views_agree(run, state, self.cast["client"])
                self.shown[run.id] = state

    # --- the end --------------------------------------------------------------------------------

    def _everything_ends(self) -> None:
        """Past every deadline (a day at a time, leases expiring), every run has ended."""
        self.harness.drain()
        for _ in range(10):
            for paused in self._runs(RunStatus.PAUSED):  # an operator resumes what was paused
                self.harness.resume(paused, user=self.cast["admin"])
            if not self._runs(*ACTIVE_STATUSES):
                break
            self.harness.advance_time(timedelta(days=1))
            self._learn_children()
        stuck = [(r.input["key"], r.status, r.waiting_for) for r in self._runs(*ACTIVE_STATUSES)]
        assert stuck == [], "runs that never end"
        self.finished_runs_leave_nothing_open()
        self.each_step_runs_once_and_compensations_reverse()
        self.every_view_shows_the_same_status()
        RunStates.totals["steps"] += self.steps_run
        RunStates.totals["examples"] += 1
        RunStates.totals["runs"] += len(self.keys)
        RunStates.totals["outcomes"].update(run.status for run in self._runs())

    totals: dict[str, Any] = {}


def _first_step(run: Run) -> str | None:
    first = StepRecord.objects.filter(run=run, seq__isnull=False).order_by("seq").first()
    return first.step_id if first is not None else None


# --- reading the four views -----------------------------------------------------------------------


def _journal_state(run: Run) -> tuple[str, dict[str, str]]:
    steps = dict(StepRecord.objects.filter(run=run).values_list("step_id", "status"))
    return Run.objects.values_list("status", flat=True).get(id=run.id), steps


def _assert_views_agree(run: Run, state: tuple[str, dict[str, str]], client: Client) -> None:
    views = {
        "database": state,
        "api": _from_api(client, run),
        "run page": _from_run_page(client, run),
        "admin": _from_admin(client, run),
        "cli": _from_cli(run),
    }
    differing = {name: view for name, view in views.items() if view != state}
    assert differing == {}, f"run {run.input['key']} is {state} but {differing}"


def _from_api(client: Client, run: Run) -> tuple[str, dict[str, str]]:
    body = client.get(f"/api/runs/{run.id}/").json()
    return body["status"], {step["id"]: step["status"] for step in body["steps"]}


def _from_run_page(client: Client, run: Run) -> tuple[str, dict[str, str]]:
    page = client.get(f"/app/runs/{run.id}/").content.decode()
    status = re.search(r'id="run-status" data-status="([a-z_]+)"', page).group(1)
    steps = re.findall(r'data-step="([^"]+)" data-status="([a-z_]+)"', page)
    return status, dict(steps)


RUN_LABELS = {label: value for value, label in RunStatus.choices}
STEP_LABELS = {label: value for value, label in StepStatus.choices}


def _from_admin(client: Client, run: Run) -> tuple[str, dict[str, str]]:
    page = client.get(f"/admin/automation/run/{run.id}/change/").content.decode()
    status = re.search(
        r'field-status">.*?<div class="readonly">([^<]*)</div>', page, re.DOTALL
    ).group(1)
    steps = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", page, re.DOTALL):
        step_id = re.search(r'class="field-step_id">\s*<p>([^<]*)</p>', row)
        step_status = re.search(r'class="field-status">\s*<p>([^<]*)</p>', row)
        if step_id and step_status:
            steps[_unescape(step_id.group(1))] = STEP_LABELS[step_status.group(1)]
    return RUN_LABELS[status.strip()], steps


def _from_cli(run: Run) -> tuple[str, dict[str, str]]:
    out = io.StringIO()
    call_command("run_workflow", run=str(run.id), no_follow=True, stdout=out)
    status, steps = "", {}
    for line in out.getvalue().splitlines():
        words = line.split("] ", 1)[1].split()
        if words[0] == "run":
            status = words[1].rstrip(":")
        else:
            steps[words[0]] = words[1]
    return status, steps


def _unescape(text: str) -> str:
    return text.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")


# --- the test -------------------------------------------------------------------------------------


@pytest.fixture
def cast(django_user_model, client):
    group = Group.objects.create(name=wf.APPROVERS.removeprefix("group:"))
    approvers = {}
    for name in ("ann", "bob", "cid"):
        approvers[name] = django_user_model.objects.create_user(name, f"{name}@example.com", "pw")
        approvers[name].groups.add(group)
    admin = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    client.force_login(admin)
    return {"approvers": approvers, "client": client, "admin": admin}


@pytest.mark.timeout(0 if DEEP else 600)
def test_run_states_stay_consistent_whatever_happens(cast, capsys):
    RunStates.cast = cast
    RunStates.totals = {"examples": 0, "steps": 0, "runs": 0, "outcomes": Counter()}
    run_state_machine_as_test(RunStates, settings=MACHINE_SETTINGS)
    with capsys.disabled():
        totals = RunStates.totals
        print(
            f"\nrun state machine: {totals['examples']} examples, {totals['steps']} rule steps, "
            f"{totals['runs']} runs, outcomes {dict(totals['outcomes'])}"
        )
