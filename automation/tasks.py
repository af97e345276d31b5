"""Celery tasks of the automation domain, and the engine's dispatch backend that sends them.
Tasks only call the engine or a service; each is safe to deliver any number of times."""

from __future__ import annotations

from celery import shared_task

from automation.engine import branches, executor, sweeps
from automation.health import heartbeat_record
from automation.lib import logcontext
from automation.retention import retention_apply

# The broker's priorities (Redis: 0 is taken first, 9 last) and the middle one every other
# message has (CELERY_TASK_DEFAULT_PRIORITY).
_BROKER_DEFAULT_PRIORITY = 5


def broker_priority(priority: int) -> int:
    """The broker priority of a run whose trigger gave it ``priority`` (higher first): the
    broker has ten levels, so 5 and above share the first, -4 and below the last."""
    return max(0, min(9, _BROKER_DEFAULT_PRIORITY - priority))


@shared_task(name="automation.heartbeat")
def heartbeat() -> None:
    """Record that background work runs (scheduled by beat; also sent when a worker starts)."""
    heartbeat_record()


@shared_task(name="automation.advance_run")
def advance_run(run_id: str) -> str:
    return executor.run_advance(run_id)


@shared_task(name="automation.run_branch")
def run_branch(run_id: str, step_id: str) -> str:
    with logcontext.scope(run_id=run_id, step_id=step_id):
        return branches.execute_branch(run_id, step_id)


@shared_task(name="automation.purge")
def purge() -> dict[str, int]:
    """Delete events and finished runs past their retention (EVENTS/RUNS_RETENTION_DAYS)."""
    return retention_apply()


@shared_task(name="automation.sweep")
def sweep() -> dict[str, int]:
    return sweeps.sweep()


class CeleryBackend:
    """The engine's dispatch backend (automation.engine.ports), installed by
    AutomationConfig.ready.

    Publishes without Celery's publish retries: with the broker down, a request (a webhook)
    must not hang on them. A message that could not be sent is re-sent by the sweeps."""

    def advance(self, run_id: str, priority: int = 0) -> None:
        advance_run.apply_async((run_id,), retry=False, priority=broker_priority(priority))

    def branch(self, run_id: str, step_id: str) -> None:
        run_branch.apply_async((run_id, step_id), retry=False)
