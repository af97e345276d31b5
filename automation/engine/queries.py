"""Queries: read-only handlers over a run's state, declared next to a code workflow.

::

    @workflow(on="order.placed")
    def order(ctx, event): ...

    @workflow.query(order)
    def progress(run: RunState) -> dict:
        return {"shipped": "ship" in run.steps, "status": run.status}

``GET /api/runs/<id>/queries/progress/`` answers with what it returns. A handler sees a copy of
the run's state read from the database before it is called (``RunState``), never the database
itself, so it cannot change the run. Asking a query, with its bounds, is ``querying``.
This module only records handlers, at import time, before the database is ready.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from automation.engine.errors import WorkflowError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9\-_]{0,99}$")

#: Query handlers by workflow name, then query name.
_queries: dict[str, dict[str, QuerySpec]] = {}


@dataclass(frozen=True)
class QuerySpec:
    workflow: str
    name: str
    fn: Callable[..., Any]
    description: str = ""
    parameters: tuple[str, ...] = ()


def query(
    of: Callable[..., Any] | str, *, name: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@workflow.query(order)``: register ``fn(run: RunState, **params)`` as a query of the
    workflow ``of`` (its function, or its name). The query is named after the function (``_``
    as ``-``) unless ``name`` is given; its keyword parameters come from the query string."""
    workflow = of if isinstance(of, str) else getattr(of, "workflow_name", None)
    if not isinstance(workflow, str):
        raise WorkflowError("@workflow.query(...) takes a @workflow function or a workflow name")

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        query_name = name or fn.__name__.replace("_", "-")
        if not NAME_RE.match(query_name):
            raise WorkflowError(
                f"query name {query_name!r}: lower-case letters, digits, '-' and '_'"
            )
        parameters = tuple(inspect.signature(fn).parameters)[1:]
        existing = _queries.get(workflow, {}).get(query_name)
        if existing is not None and existing.fn.__qualname__ != fn.__qualname__:
            raise WorkflowError(f"query {query_name!r} of {workflow!r} is registered twice")
        _queries.setdefault(workflow, {})[query_name] = QuerySpec(
            workflow=workflow,
            name=query_name,
            fn=fn,
            description=inspect.getdoc(fn) or "",
            parameters=parameters,
        )
        return fn

    return register


def queries_of(workflow: str) -> list[QuerySpec]:
    """The queries registered for ``workflow``, by name."""
    return sorted(_queries.get(workflow, {}).values(), key=lambda spec: spec.name)


def query_spec(workflow: str, name: str) -> QuerySpec | None:
    """The query ``name`` of ``workflow``; None when it has none of that name."""
    return _queries.get(workflow, {}).get(name)
