"""The run transitions table (automation/engine/transitions.py): every run state is reached
through it, a move from a wrong status or past a failed guard changes no row, and a move that
happens is announced (and dispatched) once, after commit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction

from automation import lifecycle
from automation.engine import clock, dispatch, transitions
from automation.engine.transitions import GIVEN, LEASE_FREE, TRANSITIONS, Transition
from automation.models import Run, RunStatus, Workflow, WorkflowVersion

pytestmark = pytest.mark.django_db

UPDATES = [t for t in TRANSITIONS.values() if not t.new_run]
NEW_RUN = [t for t in TRANSITIONS.values() if t.new_run]
OWNER = "worker-a"


class _Recorded:
    """A dispatch backend that only remembers what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, ...]] = []

    def advance(self, run_id: str) -> None:
        self.sent.append(("advance", run_id))

    def branch(self, run_id: str, step_id: str) -> None:
        self.sent.append(("branch", run_id, step_id))

    def route(self, event_id: str) -> None:
        self.sent.append(("route", event_id))


@pytest.fixture
def sent():
    backend = _Recorded()
    previous = dispatch.set_backend(backend)
    yield backend.sent
    dispatch.set_backend(previous)


@pytest.fixture
def heard():
    changes: list[tuple[str, str, str]] = []

    def on_run(sender, *, run_id, workflow, status, **_):
        changes.append((str(run_id), workflow, status))

    lifecycle.run_changed.connect(on_run)
    yield changes
    lifecycle.run_changed.disconnect(on_run)


@pytest.fixture
def version():
    wf = Workflow.objects.create(name="transitions-table", kind=Workflow.Kind.CODE)
    return WorkflowVersion.objects.create(workflow=wf, number=1, checksum="-")


def _run(version: WorkflowVersion, move: Transition, status: str) -> Run:
    """A run in ``status`` that meets every guard of ``move``."""
    fields: dict[str, Any] = {"lease_owner": OWNER, "lease_expires_at": clock.now()}
    for key, value in move.guard.items():
        if value is LEASE_FREE:
            fields |= {"lease_owner": "", "lease_expires_at": None}
        elif value is not GIVEN:
            fields[key] = value
    return Run.objects.create(workflow=version.workflow, version=version, status=status, **fields)


def _given(move: Transition) -> dict[str, Any]:
    """Values for what the table leaves to the caller: guards the run of ``_run`` meets."""
    samples = {
        "lease_expires_at": clock.now() + timedelta(minutes=1),
        "waiting_for": "an event",
        "output": {"done": True},
        "error": {"message": "it broke"},
        "wakeups": 0,
        "paused_by": None,
        "held_by_workflow": True,
    }
    given = {key: samples.get(key) for key, value in move.writes.items() if value is GIVEN}
    if move.writes.get("lease_owner") is GIVEN:
        given["lease_owner"] = "worker-b"  # a lease taken
    given |= {
        key: OWNER if key == "lease_owner" else samples[key]
        for key, value in move.guard.items()
        if value is GIVEN
    }
    return given


def _row(run: Run) -> dict[str, Any]:
    return Run.objects.filter(id=run.id).values().get()


def _wrong_statuses(move: Transition) -> list[str]:
    return [
        status for status in RunStatus.values if status not in (move.sources or RunStatus.values)
    ]


def test_the_table_reaches_and_leaves_every_run_state():
    targets = {t.target for t in TRANSITIONS.values()}
    assert set(RunStatus.values) <= targets
    sources = {s for t in TRANSITIONS.values() if t.target is not None for s in t.sources or ()}
    # Every active state has a way out; every finished one too, by a rerun ("failed" by a
    # retry as well).
    assert sources == set(RunStatus.values)
    assert {t.name for t in TRANSITIONS.values() if RunStatus.SUCCEEDED in (t.sources or ())} == {
        "take_finished",
        "rerun",
    }


def test_the_module_docstring_tells_every_run_state_and_every_transition():
    doc = transitions.__doc__ or ""
    for status in RunStatus.values:
        assert f"**{status}**" in doc
    for name in TRANSITIONS:
        assert f"``{name}``" in doc


def test_only_moves_that_keep_the_status_may_come_from_any_status():
    assert [
        t.name for t in TRANSITIONS.values() if t.sources is None and t.target is not None
    ] == []


@pytest.mark.parametrize("move", UPDATES, ids=lambda t: t.name)
def test_a_transition_from_each_of_its_sources_moves_and_is_announced_once(
    move, version, sent, heard, django_capture_on_commit_callbacks
):
    for status in move.sources or RunStatus.values:
        run, given = _run(version, move, status), _given(move)
        with django_capture_on_commit_callbacks(execute=True):
            assert transitions.transition(run.id, move.name, workflow="wf", **given)
        run.refresh_from_db()
        assert run.status == (move.target or status)
        for key, value in given.items():
            if move.writes.get(key) is GIVEN:
                assert getattr(run, key) == value
        announced = [(str(run.id), "wf", move.target or status)] if move.announce else []
        assert heard == announced
        assert sent == ([("advance", str(run.id))] if move.dispatch else [])
        heard.clear()
        sent.clear()


@pytest.mark.parametrize(
    "move", [t for t in UPDATES if _wrong_statuses(t)], ids=lambda t: t.name
)  # fmt: skip
def test_a_transition_from_a_wrong_status_changes_nothing(
    move, version, sent, heard, django_capture_on_commit_callbacks
):
    for status in _wrong_statuses(move):
        run = _run(version, move, status)
        before = _row(run)
        with django_capture_on_commit_callbacks(execute=True):
            assert not transitions.transition(run.id, move.name, **_given(move))
        assert _row(run) == before, f"{move.name} from {status}"
    assert (heard, sent) == ([], [])


@pytest.mark.parametrize(
    "move", [t for t in UPDATES if GIVEN in t.guard.values()], ids=lambda t: t.name
)
def test_a_transition_whose_guard_fails_changes_nothing(
    move, version, sent, heard, django_capture_on_commit_callbacks
):
    for key in [key for key, value in move.guard.items() if value is GIVEN]:
        run = _run(version, move, (move.sources or RunStatus.values)[0])
        before = _row(run)
        stale = {key: "another-worker" if key == "lease_owner" else 7}
        with django_capture_on_commit_callbacks(execute=True):
            assert not transitions.transition(run.id, move.name, **(_given(move) | stale))
        assert _row(run) == before, f"{move.name} past a wrong {key}"
    assert (heard, sent) == ([], [])


@pytest.mark.parametrize("queued", [True, False])
def test_a_queued_run_is_not_claimed_and_only_a_queued_run_is_unqueued(version, queued):
    run = Run.objects.create(workflow=version.workflow, version=version, queued=queued)
    expires = clock.now() + timedelta(minutes=1)
    claimed = transitions.transition(run.id, "claim", lease_owner=OWNER, lease_expires_at=expires)
    assert claimed is not queued
    run = Run.objects.create(workflow=version.workflow, version=version, queued=queued)
    assert transitions.transition(run.id, "unqueue") is queued


def test_a_taken_lease_on_a_finished_run_is_free_again_once_it_expires(version):
    run = Run.objects.create(
        workflow=version.workflow, version=version, status=RunStatus.SUCCEEDED,
        lease_owner=OWNER, lease_expires_at=clock.now() + timedelta(minutes=1),
    )  # fmt: skip
    later = clock.now() + timedelta(minutes=5)
    take = {"lease_owner": "worker-b", "lease_expires_at": later}
    assert not transitions.transition(run.id, "take_finished", **take)
    assert transitions.transition(run.id, "take_finished", now=later, **take)


def test_two_workers_claiming_one_run_one_wins_and_it_is_announced_once(
    version, heard, django_capture_on_commit_callbacks
):
    run = Run.objects.create(workflow=version.workflow, version=version)
    expires = clock.now() + timedelta(minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        won = [
            transitions.transition(run.id, "claim", lease_owner=owner, lease_expires_at=expires)
            for owner in ("worker-a", "worker-b")
        ]
    assert won == [True, False]
    assert Run.objects.get(id=run.id).lease_owner == "worker-a"
    assert heard == [(str(run.id), "", RunStatus.RUNNING)]


def test_what_a_move_closes_is_announced_before_the_move(
    version, heard, django_capture_on_commit_callbacks
):
    run = _run(version, TRANSITIONS["fail"], RunStatus.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        transitions.transition(
            run.id, "fail", before_announcing=lambda: lifecycle.announce_run("child", "cancelled"),
            lease_owner=OWNER, output=None, error={"message": "it broke"},
        )  # fmt: skip
    assert [status for _, _, status in heard] == ["cancelled", "failed"]


def test_nothing_is_announced_when_the_move_is_rolled_back(
    version, heard, django_capture_on_commit_callbacks
):
    run = _run(version, TRANSITIONS["suspend"], RunStatus.RUNNING)

    def suspend_then_fail() -> None:
        with transaction.atomic():
            transitions.transition(
                run.id, "suspend", lease_owner=OWNER, wakeups=0, waiting_for="an event"
            )
            raise RuntimeError("rolled back")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        suspend_then_fail()
    assert heard == []
    assert Run.objects.get(id=run.id).status == RunStatus.RUNNING


def test_a_transition_names_what_it_misses(version):
    run = _run(version, TRANSITIONS["suspend"], RunStatus.RUNNING)
    with pytest.raises(TypeError, match="lease_owner, waiting_for, wakeups"):
        transitions.transition(run.id, "suspend", lease_owner=OWNER)
    with pytest.raises(ValueError, match="prepare"):
        transitions.transition(run.id, "hold", lease_owner=OWNER, lease_expires_at=None)


@pytest.mark.parametrize("move", NEW_RUN, ids=lambda t: t.name)
def test_a_run_about_to_be_created_is_prepared_without_a_query(
    move, version, django_assert_num_queries
):
    run = Run(workflow=version.workflow, version=version)
    with django_assert_num_queries(0):
        transitions.prepare(run, move.name, **_given(move))
    assert run.status == move.target
    run.status = RunStatus.WAITING
    with pytest.raises(ValueError, match="cannot"):
        transitions.prepare(run, move.name, **_given(move))
    with pytest.raises(ValueError, match="transition"):
        transitions.prepare(run, "claim", lease_owner=OWNER, lease_expires_at=None)
