"""Asking a run's query (``@workflow.query``, registered in ``queries``): the handler reads a
copy of the run's state, in its own thread, with a time bound (AUTOMATION_QUERY_TIMEOUT) and
its answer with a size bound (AUTOMATION_QUERY_MAX_BYTES), so one slow or huge handler cannot
hold a web worker or fill a response.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from automation.engine.queries import QuerySpec, queries_of, query_spec
from automation.lib.errors import DomainError
from automation.models import Run, StepRecord


@dataclass(frozen=True)
class RunState:
    """What a query handler reads: the run as stored when the query was asked.

    ``steps``: the output of every step that succeeded, by step id; ``journal``: every step
    as ``{"step_id", "kind", "status", "output", "error"}`` in the order they happened."""

    id: str
    workflow: str
    status: str
    input: Any
    output: Any
    error: Any
    waiting_for: str
    steps: MappingProxyType[str, Any]
    journal: tuple[MappingProxyType[str, Any], ...]


# --- asking -----------------------------------------------------------------------------------


class QueryError(DomainError):
    """A query that cannot be answered; the code and status say why."""

    def __init__(self, message: str, *, code: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def run_state(run: Run) -> RunState:
    records = StepRecord.objects.filter(run=run).exclude(kind=StepRecord.Kind.VALUE).timeline()
    journal = tuple(
        MappingProxyType(
            {
                "step_id": record.step_id,
                "kind": record.kind,
                "status": record.status,
                "output": record.output,
                "error": (record.error or {}).get("message"),
            }
        )
        for record in records
    )
    succeeded = {
        entry["step_id"]: entry["output"] for entry in journal if entry["status"] == "succeeded"
    }
    return RunState(
        id=str(run.id),
        workflow=run.workflow.name,
        status=run.status,
        input=run.input,
        output=run.output,
        error=(run.error or {}).get("message") if run.error else None,
        waiting_for=run.waiting_for,
        steps=MappingProxyType(succeeded),
        journal=journal,
    )


def query_run(*, run: Run, name: str, params: dict[str, str] | None = None) -> Any:
    """Answer the query ``name`` of ``run``'s workflow: its handler's JSON result."""
    spec = query_spec(run.workflow.name, name)
    if spec is None:
        known = ", ".join(spec.name for spec in queries_of(run.workflow.name)) or "none"
        raise QueryError(
            f"workflow {run.workflow.name!r} has no query {name!r} (its queries: {known})",
            code="not_found",
            status=404,
        )
    params = {key: value for key, value in (params or {}).items() if key != "format"}
    unknown = sorted(set(params) - set(spec.parameters))
    if unknown:
        raise QueryError(
            f"query {name!r} takes no parameter {', '.join(unknown)} "
            f"(its parameters: {', '.join(spec.parameters) or 'none'})",
            code="invalid",
            status=400,
        )
    state = run_state(run)
    return _bounded(spec, state, params)


def _bounded(spec: QuerySpec, state: RunState, params: dict[str, str]) -> Any:
    """Call the handler in its own thread, waiting at most AUTOMATION_QUERY_TIMEOUT seconds.
    A handler still running then is abandoned (a daemon thread: Python cannot stop it, but
    it holds no database connection and the request is answered)."""
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["result"] = spec.fn(state, **params)
        except Exception as exc:  # the handler's own bug: reported, never raised in the view
            box["error"] = exc

    thread = threading.Thread(target=call, name=f"query {spec.name}", daemon=True)
    thread.start()
    limit = settings.AUTOMATION_QUERY_TIMEOUT
    thread.join(limit)
    if thread.is_alive():
        raise QueryError(
            f"query {spec.name!r} did not answer within {limit:g}s "
            "(AUTOMATION_QUERY_TIMEOUT); make the handler read less",
            code="query_timeout",
            status=504,
        )
    if "error" in box:
        exc = box["error"]
        raise QueryError(
            f"query {spec.name!r} failed: {type(exc).__name__}: {str(exc)[:500]}",
            code="query_failed",
            status=500,
        )
    return _sized(spec, box.get("result"))


def _sized(spec: QuerySpec, result: Any) -> Any:
    try:
        text = json.dumps(result, cls=DjangoJSONEncoder, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise QueryError(
            f"query {spec.name!r} returned something that is not JSON ({exc}); return dicts, "
            "lists, strings, numbers, booleans or None",
            code="query_failed",
            status=500,
        ) from None
    limit = settings.AUTOMATION_QUERY_MAX_BYTES
    if len(text.encode()) > limit:
        raise QueryError(
            f"query {spec.name!r} answered {len(text.encode())} bytes; the limit is {limit} "
            "(AUTOMATION_QUERY_MAX_BYTES); return a summary",
            code="query_too_large",
            status=500,
        )
    return json.loads(text)
