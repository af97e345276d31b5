"""Which events a workflow or a waiting step wants: type patterns, exact matches and CEL.

CEL (the Common Expression Language of Kubernetes and Inngest) is not Turing-complete and has no
side effects; expressions are compiled once and cached, and a bad one is rejected with the
parser's message. Not Turing-complete is not cheap: an expression whose cost grows with the
square of the data is refused (``celcost``), and every evaluation is bounded by the size of the
data it reads and by a deadline, so no event can hold a process.
"""

from __future__ import annotations

import fnmatch
import time
from functools import lru_cache
from typing import Any

from django.conf import settings

from automation.engine import celcost

MAX_EXPRESSION_LENGTH = 2000
MAX_COMPREHENSIONS = 4
MISSING = object()


class ExpressionError(ValueError):
    """A CEL expression that does not compile, or fails on the data it is given."""


def type_matches(pattern: str, event_type: str) -> bool:
    """Exact type, or a wildcard: ``order.*`` matches order.created and order.line.added."""
    if not pattern:
        return False
    if "*" not in pattern and "?" not in pattern:
        return pattern == event_type
    return fnmatch.fnmatchcase(event_type, pattern)


def source_matches(pattern: str, source: str) -> bool:
    """Whether an event's stored source fits a trigger's or a wait's ``source`` pattern:
    exact, or a wildcard (``webhook:*``). No pattern: every source."""
    return not pattern or fnmatch.fnmatchcase(source, pattern)


def lookup(data: Any, path: str) -> Any:
    """``data["a"]["b"][0]`` for the path ``a.b.0``; ``MISSING`` when absent."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def data_matches(match: dict[str, Any], data: dict[str, Any]) -> bool:
    """Every key (a dotted path into ``data``) equals its value."""
    return all(lookup(data, path) == expected for path, expected in match.items())


def compile_expression(expression: str) -> Any:
    """The compiled program; ExpressionError when it does not compile or costs too much."""
    program, problem = _compiled(expression)
    if problem is not None:
        raise ExpressionError(problem)
    return program


@lru_cache(maxsize=1024)
def _compiled(expression: str) -> tuple[Any, str | None]:
    """(program, None) or (None, why not): a refusal is cached too, so an event flood against
    a stored filter that is refused costs one analysis, not one per event."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        return None, (
            f"expression is {len(expression)} characters; the limit is {MAX_EXPRESSION_LENGTH}"
        )
    # Imported on first use: the package imports its command-line tool's prompt_toolkit, a
    # quarter of a second on the start of every process (web, worker, command) otherwise.
    import cel

    try:
        program = cel.compile(expression)
        _check_cost(expression)
    except (ValueError, RuntimeError) as exc:  # ExpressionError is a ValueError
        return None, str(exc)
    return program, None


def _check_cost(expression: str) -> None:
    """Refuse what grows faster than the data: see ``celcost``. Parsed, not pattern-matched,
    so a comment or a string literal can neither hide a comprehension nor fake one."""
    try:
        tree = celcost.parse(expression)
        degree, count = celcost.degree(tree), celcost.count_comprehensions(tree)
    except celcost.CostError as exc:
        raise ExpressionError(f"could not be analysed for cost ({exc})") from None
    except RecursionError:  # 2,000 characters of "!!!…" or ".b.b.b…"
        raise ExpressionError("it is nested too deeply; split it or simplify it") from None
    if degree > celcost.MAX_DEGREE:
        raise ExpressionError(
            "its cost grows with the square of the data: a comprehension (exists, all, map, "
            "filter) over event or step data may not read that data again, nor hold another "
            "comprehension over it, in its body; compare with the comprehension's variable or "
            "use `in` (trigger.data.m in trigger.data.items)"
        )
    if count > MAX_COMPREHENSIONS:
        raise ExpressionError(
            f"{count} comprehensions in one expression; the limit is {MAX_COMPREHENSIONS}"
        )


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """Evaluate within the limits: at most ``CEL_MAX_INPUT_VALUES`` values in the data the
    expression reads, and ``CEL_TIMEOUT_MS`` of time (checked on each lookup of the data)."""
    program = compile_expression(expression)
    names = [name for name in program.variables() if name in context]
    _check_input_size(expression, [context[name] for name in names])
    guard = _Deadline(settings.CEL_TIMEOUT_MS / 1000)
    try:
        result = program.execute(guard.context(context))
    except KeyError as exc:
        guard.check(expression)
        raise ExpressionError(f"{expression!r}: no such field {exc}") from None
    # The data decides these too: an index past a list's end, a division by zero, an overflow.
    except (IndexError, ArithmeticError, TypeError, ValueError, RuntimeError) as exc:
        guard.check(expression)
        raise ExpressionError(f"{expression!r}: {exc}") from None
    guard.check(expression)  # a result reached with stand-ins is no result
    return result


def _check_input_size(expression: str, values: list[Any]) -> None:
    limit = settings.CEL_MAX_INPUT_VALUES
    if count_values(values, limit) > limit:
        raise ExpressionError(
            f"{expression!r} was not evaluated: the data it reads has more than {limit:,} "
            "values (CEL_MAX_INPUT_VALUES)"
        )


def count_values(value: Any, limit: int) -> int:
    """How many values (lists, maps, scalars) ``value`` holds, counting no further than
    ``limit + 1``. A list or map seen twice (an event's ``data`` is also its ``body``) counts
    once."""
    count, pending, seen = 0, [value], set()
    while pending and count <= limit:
        item = pending.pop()
        count += 1
        if isinstance(item, dict | list | tuple):
            if id(item) in seen:
                continue
            seen.add(id(item))
            pending.extend(item.values() if isinstance(item, dict) else item)
    return count


class _Deadline:
    """Stops an evaluation that runs past its time. The evaluator runs in Rust and holds the
    GIL; it comes back to Python on each lookup of a variable (the resolver is asked before
    the variables). Until the deadline the resolver defers to the variables; after it, it
    hands a stand-in that fails at once, so the rest of the evaluation is quick, and the
    caller reports the timeout whatever the evaluation gave."""

    _STAND_IN = 0  # "trigger.data" on a number: an error, with nothing to convert

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.expired = False

    def context(self, variables: dict[str, Any]) -> Any:
        import cel

        context = cel.Context(variables=variables)
        context.set_variable_resolver(self.resolve)
        return context

    def resolve(self, name: str) -> Any:
        if time.monotonic() <= self.ends:
            return None  # not mine: the variable as given
        self.expired = True
        return self._STAND_IN

    def check(self, expression: str) -> None:
        if self.expired:
            raise ExpressionError(
                f"{expression!r} took longer than {self.seconds * 1000:g} ms "
                "(CEL_TIMEOUT_MS); it was stopped"
            )


def condition(expression: str, context: dict[str, Any]) -> bool:
    """Evaluate a CEL condition, which must produce a boolean."""
    result = evaluate(expression, context)
    if not isinstance(result, bool):
        raise ExpressionError(
            f"{expression!r} gave {type(result).__name__} {result!r}; conditions give true or false"
        )
    return result
