"""Trigger matching: which workflows an event starts."""

from __future__ import annotations

import logging
from typing import Any

from automation.engine import flow, flowspec, matching, registry
from automation.engine.errors import WorkflowError
from automation.engine.runs import run_start
from automation.lib.errors import DomainError
from automation.models import Run, Workflow, WorkflowVersion

logger = logging.getLogger(__name__)


def runs_start_for_event(
    event: Any, *, lease_first_to: str = "", problems: list[str] | None = None
) -> list[Run]:
    """Start every active workflow whose trigger matches the event (at most once each).

    ``lease_first_to``: the first run is created held by this lease owner, for the caller to
    advance at once (one broker round trip less between an event and its first step).
    ``problems`` receives why a matching workflow was not started (its filter failed)."""
    registry.sync_code_workflows()
    latest: dict[int, WorkflowVersion] = {}
    versions = (
        WorkflowVersion.objects.filter(workflow__active=True)
        .select_related("workflow")
        .order_by("workflow_id", "-number")
    )
    for version in versions:
        latest.setdefault(version.workflow_id, version)
    runs = []
    for version in latest.values():
        pattern, condition, source = _trigger(version)
        if not matching.type_matches(pattern, event.type):
            continue
        if not matching.source_matches(source, event.source):
            continue
        if not _filter_passes(version, condition, event, problems):
            continue
        # One workflow that cannot start never blocks the others: run_start (and flow.start)
        # write only inside their own atomic block (a savepoint here), so a failure leaves this
        # transaction usable.
        try:
            control = _flow_control(version)
            if control:
                run = flow.start(
                    version=version,
                    event=event,
                    control=control,
                    lease_to="" if runs else lease_first_to,
                    problems=problems,
                )
            else:
                run = run_start(
                    workflow=version.workflow,
                    version=version,
                    event=event,
                    lease_to="" if runs else lease_first_to,
                )
        except Exception:
            logger.exception("event %s could not start workflow %s", event.id, version.workflow)
            continue
        if run is not None:
            runs.append(run)
    return runs


class UnknownTarget(DomainError, ValueError):
    """A replay names a workflow or version that cannot take the event."""

    code = "invalid_target"


def target_version(*, workflow: str, version: int | None, event_type: str) -> WorkflowVersion:
    """The version of ``workflow`` a replay of an ``event_type`` event targets (its latest when
    ``version`` is None). Raises UnknownTarget when there is none, the workflow is inactive or
    its trigger does not subscribe to the type."""
    registry.sync_code_workflows()
    wf = Workflow.objects.filter(name=workflow).first()
    if wf is None:
        raise UnknownTarget(f"workflow: no workflow named {workflow!r}")
    if not wf.active:
        raise UnknownTarget(f"workflow: {workflow!r} is inactive; activate it first")
    rows = WorkflowVersion.objects.filter(workflow=wf).select_related("workflow")
    target = rows.filter(number=version).first() if version else rows.order_by("-number").first()
    if target is None:
        numbers = ", ".join(
            str(n) for n in rows.order_by("number").values_list("number", flat=True)
        )
        raise UnknownTarget(f"version: {workflow} has no version {version} (it has {numbers})")
    pattern = _trigger(target)[0]
    if not matching.type_matches(pattern, event_type):
        raise UnknownTarget(
            f"workflow: {target} is triggered by {pattern or 'no event'!r}, not {event_type!r}"
        )
    return target


def run_start_for_target(event: Any, *, target: WorkflowVersion) -> Run:
    """Start one run of ``target`` for ``event`` (a replay aimed at one workflow): its trigger's
    filter and flow control are not applied, the replay chose this workflow."""
    return run_start(workflow=target.workflow, version=target, event=event)


def _trigger(version: WorkflowVersion) -> tuple[str, str, str]:
    """(event pattern, CEL filter, source pattern). For code workflows the code is the source
    of truth."""
    if version.workflow.kind == Workflow.Kind.CODE:
        name = version.workflow.name
        known = registry.known_versions(name)
        if not known:
            logger.warning("workflow %s is not in this process's code; events skip it", name)
            return "", "", ""
        if version.number not in known:
            # A rolling deploy: the database knows a version this process does not. Route with
            # the newest trigger we know; the run is executed by a worker that knows it.
            logger.warning(
                "workflow %s v%d is not in this process's code (it has v%s); routing with v%d",
                name,
                version.number,
                "/v".join(map(str, known)),
                known[-1],
            )
        spec = registry.get_workflow(name, version.number if version.number in known else None)
        return spec.on, spec.filter, spec.source
    source = (version.definition or {}).get("trigger", {}).get("source", "")
    return version.trigger_event, version.trigger_filter, source


def _flow_control(version: WorkflowVersion) -> flowspec.FlowControl:
    """The trigger's flow control: the code's for code workflows, the definition's trigger
    otherwise (checked when it was saved)."""
    if version.workflow.kind == Workflow.Kind.CODE:
        known = registry.known_versions(version.workflow.name)
        if not known:
            return flowspec.NONE
        number = version.number if version.number in known else None
        return registry.get_workflow(version.workflow.name, number).flow
    trigger = (version.definition or {}).get("trigger") or {}
    if not any(trigger.get(option) is not None for option in flowspec.OPTIONS):
        return flowspec.NONE
    try:
        return flowspec.from_options(trigger)
    except WorkflowError as exc:  # saved before these checks existed
        logger.warning("workflow %s v%d: trigger: %s", version.workflow.name, version.number, exc)
        return flowspec.NONE


def _filter_passes(
    version: WorkflowVersion, condition: str, event: Any, problems: list[str] | None
) -> bool:
    if not condition:
        return True
    try:
        matching.compile_expression(condition)  # a refused filter needs none of the event's data
        return matching.condition(condition, {"trigger": event.as_trigger()})
    except matching.ExpressionError as exc:
        logger.warning(
            "workflow %s v%d: filter could not be evaluated for event %s (%s); not started",
            version.workflow.name,
            version.number,
            event.id,
            exc,
        )
        if problems is not None:
            problems.append(
                f"workflow {version.workflow.name} v{version.number} not started: "
                f"trigger.filter: {exc}"
            )
        return False
