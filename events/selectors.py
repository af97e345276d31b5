"""Reads of the events domain: filtered event lists, the runs an event started, its effects."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import NotSupportedError
from django.db.models import BooleanField, Expression, F, Q, QuerySet
from django.utils.dateparse import parse_datetime

from automation.lib.db import QueryTooSlow, statement_timeout
from automation.lib.errors import DomainError
from automation.lib.ids import BadIdPrefix, id_lookup
from events.models import Event


class BadFilter(DomainError, ValueError):
    """A filter value cannot be used; the message names the parameter."""

    code = "invalid_filter"


def events_filter(params: Mapping[str, str]) -> QuerySet[Event]:
    """Events filtered by ``id`` (a whole id or the short id the pages show), ``type`` (exact, or
    ``order.*``), ``source``, ``correlation_id``, ``subject``, ``received_after`` and
    ``received_before`` (ISO 8601), and ``q`` (words in the data, see ``data_search``), newest
    first. Evaluate a ``q`` search inside ``automation.lib.db.statement_timeout``."""
    events = Event.objects.all()
    if params.get("q"):
        events = data_search(events, params["q"])
    if params.get("id"):
        try:
            events = events.filter(id_lookup("id", params["id"]))
        except BadIdPrefix as exc:
            raise BadFilter(str(exc)) from exc
    event_type = params.get("type")
    if event_type:
        if event_type.endswith(".*"):
            events = events.filter(type__startswith=event_type[:-1])
        else:
            events = events.filter(type=event_type)
    for name in ("source", "correlation_id", "subject"):
        if params.get(name):
            events = events.filter(**{name: params[name]})
    if params.get("received_after"):
        events = events.filter(received_at__gte=_datetime(params, "received_after"))
    if params.get("received_before"):
        events = events.filter(received_at__lt=_datetime(params, "received_before"))
    return events


def _datetime(params: Mapping[str, str], name: str) -> datetime:
    value = parse_datetime(params[name].replace(" ", "+"))
    if value is None or value.tzinfo is None:
        raise BadFilter(f"{name} must be an ISO 8601 time with a zone, e.g. 2026-01-31T12:00Z")
    # In UTC: PostgreSQL refuses zone offsets beyond ±15:59 that Python accepts.
    return value.astimezone(UTC)


def event_runs(event: Event) -> list:
    """The runs this event started, with their workflow (one query)."""
    return list(event.runs.select_related("workflow").order_by("created_at"))


def event_flow(event: Event) -> list:
    """What the flow control of each workflow it matched did with this event (started,
    delayed, debounced into a run, skipped and why), with the workflow and run (one query)."""
    return list(event.trigger_outcomes.select_related("workflow", "run").order_by("created_at"))


def events_caused_by_runs(run_ids: list) -> QuerySet[Event]:
    """Events emitted by these runs (their causation id is the run's id)."""
    return Event.objects.filter(causation_id__in=[str(run_id) for run_id in run_ids])


def events_caused_by(event: Event) -> QuerySet[Event]:
    """Events caused directly by this event (replays)."""
    return Event.objects.filter(causation_id=str(event.id))


# --- Text inside the data ---------------------------------------------------------------------

#: A search shorter than this matches too much to be useful, and costs the most.
SEARCH_MIN_LENGTH = 3
SEARCH_MAX_LENGTH = 200
#: More words than this are refused (each one is a condition over every value of the data).
SEARCH_MAX_WORDS = 8


#: PostgreSQL cannot estimate how many rows a prefix search (``word:*``) matches and guesses a
#: few percent: for "newest 50" it then walks the primary key backwards testing every row, slow
#: for a word in no event. Without plain index scans it takes the GIN index and sorts the
#: matches (figures in bench/README.md, "Search in event data").
SEARCH_PLANNER = {"enable_indexscan": "off"}


class SearchTooSlow(DomainError):
    """A text search stopped by its time limit (SEARCH_TIMEOUT_MS)."""

    code = "search_too_slow"


def search_words(text: str) -> list[str]:
    """The words of a data search, checked: BadFilter names what is wrong."""
    text = text.strip()
    if not SEARCH_MIN_LENGTH <= len(text) <= SEARCH_MAX_LENGTH:
        raise BadFilter(
            f"Search for {SEARCH_MIN_LENGTH} to {SEARCH_MAX_LENGTH} characters of text in the "
            f"event data (this has {len(text)})."
        )
    words = text.split()
    if len(words) > SEARCH_MAX_WORDS:
        raise BadFilter(f"Search for at most {SEARCH_MAX_WORDS} words (this has {len(words)}).")
    return words


@contextmanager
def search_time_limit(text: str) -> Iterator[None]:
    """Evaluate a data search for ``text`` in this block: stopped after SEARCH_TIMEOUT_MS, with
    SearchTooSlow saying how to narrow it. Without a text, nothing is bounded."""
    if not text:
        yield
        return
    limit = settings.SEARCH_TIMEOUT_MS
    try:
        with statement_timeout(limit, postgresql=SEARCH_PLANNER):
            yield
    except QueryTooSlow:
        raise SearchTooSlow(
            f"The search for {text.strip()!r} took longer than {limit} ms and was stopped: "
            "narrow it with a type, a source or a time range, or give longer words."
        ) from None


def events_matching(text: str) -> QuerySet[Event]:
    """Events one search box can mean: ``text`` as their id or short id, their correlation id,
    or words in their data (when it is a valid data search). Evaluate it inside
    ``search_time_limit``."""
    text = text.strip()
    match = Q(correlation_id=text)
    with suppress(BadIdPrefix):
        match |= id_lookup("id", text)
    # Too short or too many words for the data: ids and correlation ids still match.
    with suppress(BadFilter):
        match |= Q(DataHasWords(search_words(text)))
    return Event.objects.filter(match)


def data_search(events: QuerySet[Event], text: str) -> QuerySet[Event]:
    """Events whose data has every word of ``text`` in its values (strings and numbers, at any
    depth; keys do not count). PostgreSQL: full-text search, each word matching the start of a
    word of a value (``ber`` finds "Berlin office"), served by the GIN index
    ``event_data_search_idx``. SQLite: each word anywhere in a value, without an index."""
    return events.filter(DataHasWords(search_words(text)))


#: The values of the data as a text-search document. The index event_data_search_idx (migration
#: events 0008) is over this same expression: change both together.
DATA_TSVECTOR = "jsonb_to_tsvector('simple'::regconfig, {}, '[\"string\", \"numeric\"]'::jsonb)"
#: On SQLite: is there a string or number value in the data containing the word?
SQLITE_VALUE_LIKE = (
    "EXISTS (SELECT 1 FROM json_tree({}) AS value WHERE value.type IN ('text', 'integer', "
    "'real') AND value.atom LIKE %s ESCAPE '\\')"
)


class DataHasWords(Expression):
    """True for events whose ``data`` values hold every word (see ``data_search``)."""

    conditional = True
    output_field = BooleanField()

    def __init__(self, words: list[str], data: Any = None) -> None:
        super().__init__()
        self.words = words
        self.data = data if data is not None else F("data")

    def get_source_expressions(self) -> list[Any]:
        return [self.data]

    def set_source_expressions(self, exprs: list[Any]) -> None:
        (self.data,) = exprs

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        raise NotSupportedError("Searching event data needs PostgreSQL or SQLite.")

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        data, params = compiler.compile(self.data)
        # Each word quoted as a lexeme with :* (a prefix match), all of them required.
        query = " & ".join(f"'{_tsquery_quote(word)}':*" for word in self.words)
        sql = f"{DATA_TSVECTOR.format(data)} @@ to_tsquery('simple'::regconfig, %s)"
        return sql, [*params, query]

    def as_sqlite(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        data, params = compiler.compile(self.data)
        clauses, values = [], []
        for word in self.words:
            clauses.append(SQLITE_VALUE_LIKE.format(data))
            values += [*params, f"%{_like_escape(word)}%"]
        return "(" + " AND ".join(clauses) + ")", values


def _tsquery_quote(word: str) -> str:
    return word.replace("\\", "\\\\").replace("'", "''")


def _like_escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
