"""What each kind of rule does with an event of a key, and when the key falls due.

All of it runs with the key's RuleKey row locked (:mod:`rules.evaluate`). ``on_event`` sees a
matching event; ``on_due`` runs when the row's ``due_at`` has come: an absence's deadline (it
fires), a sequence that ran out of time (dropped), a threshold's oldest event leaving its window,
an aggregate's or an anomaly's window end (it fires). A row with nothing open is idle: it keeps
a ``due_at`` ``IDLE_GRACE`` ahead, and the sweep deletes it then, so keys seen once do not pile
up.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from automation.definitions.templates import TemplateError, render
from automation.engine import matching
from events.models import Event
from events.services import InvalidEvent, event_record
from rules.models import EventCause, Rule, RuleEvent, RuleKey
from rules.spec import RuleSpec

IDLE_GRACE = timedelta(minutes=5)
TEMPLATE_EVENTS = 100  # the first events a template sees as ``events``
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class KeyState:
    """One rule key being decided, its row locked."""

    spec: RuleSpec
    rule_id: int
    row: RuleKey
    now: datetime
    problems: list[str] = field(default_factory=list)

    def save(self, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self.row, name, value)
        RuleKey.objects.filter(pk=self.row.pk).update(**changes)

    def hold(self, event: Event) -> None:
        RuleEvent.objects.create(rule_key=self.row, event_id=event.id, created_at=self.now)

    def held(self) -> list[Any]:
        return list(
            RuleEvent.objects.filter(rule_key=self.row)
            .order_by("created_at", "id")
            .values_list("event_id", flat=True)
        )

    def held_count(self) -> int:
        return RuleEvent.objects.filter(rule_key=self.row).count()

    def idle(self) -> None:
        """Nothing open any more: forget the held events; the sweep deletes the row later."""
        RuleEvent.objects.filter(rule_key=self.row).delete()
        self.save(state={}, opened_at=None, due_at=self.now + IDLE_GRACE)


def matched_steps(
    spec: RuleSpec, event: Event, trigger: dict[str, Any], problems: list[str]
) -> set[int]:
    """The steps of the rule (indexes into ``spec.steps``) that ``event`` matches: its type and
    its filter. A filter that fails on this event is a problem on the event's page."""
    found = set()
    for index, step in enumerate(spec.steps):
        if not matching.type_matches(step.event, event.type):
            continue
        try:
            if not step.filter or matching.condition(step.filter, {"event": trigger}):
                found.add(index)
        except matching.ExpressionError as exc:
            problems.append(f"rule {spec.name}: filter: {exc}; the event was not counted")
    return found


def on_event(state: KeyState, event: Event, trigger: dict[str, Any], matched: set[int]) -> None:
    """``matched``: the steps the event matches (at least one)."""
    _EVENT[state.spec.kind](state, event, trigger, matched)


def on_due(state: KeyState) -> None:
    _DUE[state.spec.kind](state)


# --- sequence and absence --------------------------------------------------------------------


def _sequence_event(
    state: KeyState, event: Event, trigger: dict[str, Any], matched: set[int]
) -> None:
    steps, step = state.spec.steps, state.row.state.get("step", 0)
    if state.row.opened_at is not None and step in matched:
        state.hold(event)
        if step + 1 == len(steps):
            _fire(state, state.held(), {}, window=str(state.row.opened_at.isoformat()))
            state.idle()
        else:
            state.save(state={"step": step + 1})
    elif state.row.opened_at is None and 0 in matched:
        _open(state, event, step=1)


def _sequence_due(state: KeyState) -> None:
    state.idle()  # ran out of time before the sequence completed: no match


def _absence_event(
    state: KeyState, event: Event, trigger: dict[str, Any], matched: set[int]
) -> None:
    if state.row.opened_at is not None:
        if 1 in matched:
            state.idle()  # it came in time
    elif 0 in matched:
        _open(state, event, step=1)


def _absence_due(state: KeyState) -> None:
    _fire(state, state.held(), {}, window=str(state.row.opened_at.isoformat()))
    state.idle()


def _open(state: KeyState, event: Event, *, step: int) -> None:
    assert state.spec.within is not None
    state.hold(event)
    state.save(state={"step": step}, opened_at=state.now, due_at=state.now + state.spec.within)


# --- threshold -------------------------------------------------------------------------------


def _threshold_event(
    state: KeyState, event: Event, trigger: dict[str, Any], matched: set[int]
) -> None:
    # Events that left the window were pruned when the row fell due (by the sweep, or just
    # before this call): what is held is inside the window.
    assert state.spec.within is not None
    state.hold(event)
    if state.held_count() >= state.spec.count:
        held = state.held()
        _fire(state, held, {"count": len(held)}, window=str(held[0]))
        state.idle()  # once per window: counting starts again after it fired
    elif state.row.opened_at is None:
        state.save(opened_at=state.now, due_at=state.now + state.spec.within)


def _threshold_due(state: KeyState) -> None:
    _threshold_prune(state)
    _threshold_reschedule(state)


def _threshold_prune(state: KeyState) -> None:
    assert state.spec.within is not None
    cutoff = state.now - state.spec.within
    RuleEvent.objects.filter(rule_key=state.row, created_at__lte=cutoff).delete()


def _threshold_reschedule(state: KeyState) -> None:
    """Due when the oldest held event leaves the window (idle when none is held)."""
    assert state.spec.within is not None
    oldest = (
        RuleEvent.objects.filter(rule_key=state.row)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if oldest is None:
        state.idle()
    else:
        state.save(opened_at=oldest, due_at=oldest + state.spec.within)


# --- aggregate -------------------------------------------------------------------------------


def _window_start(moment: datetime, every: timedelta) -> datetime:
    """Tumbling windows are aligned on the epoch: every key's hour starts on the hour."""
    size = every.total_seconds()
    return _EPOCH + timedelta(seconds=math.floor((moment - _EPOCH).total_seconds() / size) * size)


def _aggregate_event(
    state: KeyState, event: Event, trigger: dict[str, Any], matched: set[int]
) -> None:
    spec = state.spec
    assert spec.every is not None
    value = 0.0
    if spec.function != "count":
        found = matching.lookup(trigger, spec.value)
        if isinstance(found, bool) or not isinstance(found, int | float):
            state.problems.append(
                f"rule {spec.name}: {spec.value} is {found!r}, not a number; the event was "
                "not counted"
                if found is not matching.MISSING
                else f"rule {spec.name}: the event has no {spec.value}; it was not counted"
            )
            return
        value = float(found)
    figures = dict(state.row.state) if state.row.opened_at is not None else {}
    if state.row.opened_at is None:
        start = _window_start(state.now, spec.every)
        state.save(opened_at=start, due_at=start + spec.every)
    count = figures.get("count", 0) + 1
    figures = {
        "count": count,
        "sum": figures.get("sum", 0.0) + value,
        "min": value if count == 1 else min(figures["min"], value),
        "max": value if count == 1 else max(figures["max"], value),
    }
    state.hold(event)
    state.save(state=figures)


def _aggregate_due(state: KeyState) -> None:
    figures, function = state.row.state, state.spec.function
    count = figures.get("count", 0)
    if count:
        result = {
            "sum": figures["sum"],
            "avg": figures["sum"] / count,
            "min": figures["min"],
            "max": figures["max"],
            "count": count,
        }[function]
        if isinstance(result, float) and result.is_integer():
            result = int(result)
        _fire(state, state.held(), {"value": result, "count": count}, window=_window(state))
    state.idle()


def _window(state: KeyState) -> str:
    assert state.row.opened_at is not None
    return state.row.opened_at.isoformat()


# --- anomaly ---------------------------------------------------------------------------------


def _anomaly_event(
    state: KeyState, event: Event, trigger: dict[str, Any], matched: set[int]
) -> None:
    spec = state.spec
    assert spec.every is not None
    if state.row.opened_at is None:
        start = _window_start(state.now, spec.every)
        state.save(
            state={"count": 0, "history": state.row.state.get("history", [])},
            opened_at=start,
            due_at=start + spec.every,
        )
    state.hold(event)
    state.save(state={**state.row.state, "count": state.row.state.get("count", 0) + 1})


def _anomaly_due(state: KeyState) -> None:
    """Close each window that has ended: score it against the past windows, fire if it is far
    off, and open the next (empty) one. A key whose recent windows were all empty goes idle."""
    spec = state.spec
    assert spec.every is not None
    assert state.row.opened_at is not None
    history: list[int] = list(state.row.state.get("history", []))
    count = state.row.state.get("count", 0)
    start = state.row.opened_at
    for _ in range(spec.history + 1):
        judged = baseline(history, count, spec)
        if judged is not None:
            expected, score = judged
            figures = {"observed": count, "expected": expected, "score": score}
            _fire(state, state.held(), figures, window=start.isoformat())
        RuleEvent.objects.filter(rule_key=state.row).delete()
        history = [*history, count][-spec.history :]
        start, count = start + spec.every, 0
        if start + spec.every > state.now:
            break
    else:  # idle for longer than the history: every window since was empty
        history = [0] * spec.history
        start = _window_start(state.now, spec.every)
    if not any(history):
        state.idle()
        return
    state.save(state={"count": 0, "history": history}, opened_at=start, due_at=start + spec.every)


def baseline(history: list[int], observed: int, spec: RuleSpec) -> tuple[float, float] | None:
    """(expected, score) when ``observed`` is far from the past windows, else None.

    The expected count is the median of the past windows; the spread their median absolute
    deviation (scaled to a standard deviation), at least the square root of the median (the
    noise of a count) and at least 1, so a steady rate does not make every change an anomaly.
    Nothing is judged before ``warmup`` past windows."""
    if len(history) < spec.warmup:
        return None
    expected = statistics.median(history)
    mad = statistics.median(abs(x - expected) for x in history)
    spread = max(1.4826 * mad, math.sqrt(expected), 1.0)
    score = (observed - expected) / spread
    if abs(score) < spec.sensitivity:
        return None
    return float(expected), round(score, 2)


# --- the derived event -----------------------------------------------------------------------


def _fire(state: KeyState, held: list[Any], figures: dict[str, Any], *, window: str) -> None:
    """Emit the rule's derived event, with a causation link to each event in ``held``."""
    spec, row = state.spec, state.row
    causes = {e.id: e for e in Event.objects.filter(id__in=held[:TEMPLATE_EVENTS])}
    first = [causes[i] for i in held[:TEMPLATE_EVENTS] if i in causes]
    scope = {
        "events": [event.as_trigger() for event in first],
        "key": row.key,
        "rule": spec.name,
        "window": _window_scope(state),
        **figures,
    }
    default = {"key": row.key, **figures} | ({"window": scope["window"]} if spec.every else {})
    data, subject = default, row.key
    try:
        if "data" in spec.emit:
            data = render(spec.emit["data"], scope)
        if "subject" in spec.emit:
            subject = str(render(spec.emit["subject"], scope))
    except TemplateError as exc:
        state.problems.append(f"rule {spec.name}: emit: {exc}; emitted its figures instead")
        data = {**default, "template_error": str(exc)}
    last = first[-1] if first else None
    try:
        derived, created = event_record(
            type=spec.emit["type"],
            data=data,
            source=f"rule:{spec.name}",
            subject=subject[:200],
            correlation_id=last.correlation_id if last else "",
            causation_id=str(held[-1]) if held else "",
            idempotency_key=f"{row.key}|{window}"[:255],
        )
    except InvalidEvent as exc:
        state.problems.append(f"rule {spec.name}: its event was refused: {exc}")
        return
    if created and held:
        EventCause.objects.bulk_create(
            [EventCause(derived=derived, cause_id=cause, rule_id=state.rule_id) for cause in held],
            ignore_conflicts=True,
            batch_size=500,
        )


def _window_scope(state: KeyState) -> dict[str, str]:
    opened = state.row.opened_at
    if opened is None:
        return {}
    length = state.spec.every or state.spec.within
    end = opened + length if length else state.now
    return {"start": opened.isoformat(), "end": end.isoformat()}


_EVENT = {
    Rule.Kind.SEQUENCE: _sequence_event,
    Rule.Kind.ABSENCE: _absence_event,
    Rule.Kind.THRESHOLD: _threshold_event,
    Rule.Kind.AGGREGATE: _aggregate_event,
    Rule.Kind.ANOMALY: _anomaly_event,
}
_DUE = {
    Rule.Kind.SEQUENCE: _sequence_due,
    Rule.Kind.ABSENCE: _absence_due,
    Rule.Kind.THRESHOLD: _threshold_due,
    Rule.Kind.AGGREGATE: _aggregate_due,
    Rule.Kind.ANOMALY: _anomaly_due,
}
