"""Database helpers shared by the domains."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, TypeVar

from django.db import DataError, OperationalError, connections, models, transaction
from django.db.models.sql import UpdateQuery

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=models.Model)


def _savepoint_if_nested(using: str | None = None) -> Any:
    """A savepoint inside a transaction, so a unique conflict leaves it usable; nothing in
    autocommit, where a lone statement commits by itself (no BEGIN and COMMIT round trips)."""
    nested = transaction.get_connection(using).in_atomic_block
    return transaction.atomic(using=using) if nested else nullcontext()


def insert(model: type[M], **fields: Any) -> M:
    """INSERT a row that may hit a unique constraint (IntegrityError for the caller to handle).

    Inside a transaction it gets a savepoint, so the IntegrityError leaves the caller's
    transaction usable; in autocommit (the hot paths: webhooks, steps) the lone INSERT commits
    by itself, without the BEGIN and COMMIT round trips an atomic block would add."""
    with _savepoint_if_nested():
        return model.objects.create(**fields)


_plain_inserts: dict[tuple[type[models.Model], str], tuple[list[models.Field], str]] = {}


def insert_plain(model: type[M], **fields: Any) -> M:
    """INSERT a row with one statement built once per model and database, as ``insert`` does
    but without the ORM's save machinery: no pre_save/post_save signals, no query compiler per
    row. For append-only rows on a hot path (an event per webhook: ``Model.save`` cost a sixth
    of the request's CPU); the primary key must be set in Python (a default such as uuid7),
    not by the database. A unique conflict raises IntegrityError, inside a transaction from a
    savepoint, as with ``insert``."""
    instance = model(**fields)
    connection = transaction.get_connection()
    columns, sql = _plain_insert(model, connection)
    params = [
        field.get_db_prep_save(field.pre_save(instance, True), connection) for field in columns
    ]
    with _savepoint_if_nested(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def _plain_insert(model: type[models.Model], connection: Any) -> tuple[list[models.Field], str]:
    key = (model, connection.alias)
    if key not in _plain_inserts:
        opts = model._meta
        if opts.pk.db_returning:
            raise ValueError(f"{opts.label}: insert_plain needs a primary key set in Python")
        columns = list(opts.concrete_fields)
        names = ", ".join(connection.ops.quote_name(field.column) for field in columns)
        placeholders = ", ".join(["%s"] * len(columns))
        table = connection.ops.quote_name(opts.db_table)
        sql = f"INSERT INTO {table} ({names}) VALUES ({placeholders})"  # noqa: S608 (quoted names)
        _plain_inserts[key] = (columns, sql)
    return _plain_inserts[key]


def insert_if(model: type[M], exists: models.QuerySet, **fields: Any) -> M | None:
    """INSERT a row only if ``exists`` has a row, in one statement (INSERT ... SELECT ... WHERE
    EXISTS); returns the new instance, or None when the condition did not hold. A unique
    conflict raises IntegrityError, as with ``insert``. For hot paths where a separate check
    would cost a round trip (and the race between check and insert)."""
    instance = model(**fields)
    connection = transaction.get_connection(exists.db)
    opts = model._meta
    columns, values = [], []
    for field in opts.concrete_fields:
        if field.primary_key and isinstance(field, models.AutoField | models.BigAutoField):
            continue
        columns.append(connection.ops.quote_name(field.column))
        values.append(field.get_db_prep_save(field.pre_save(instance, True), connection))
    condition, params = exists.values("pk").query.sql_with_params()
    pk = connection.ops.quote_name(opts.pk.column)
    sql = (
        f"INSERT INTO {connection.ops.quote_name(opts.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(['%s'] * len(values))} WHERE EXISTS ({condition}) RETURNING {pk}"
    )
    with _savepoint_if_nested(exists.db), connection.cursor() as cursor:
        cursor.execute(sql, [*values, *params])
        row = cursor.fetchone()
    if row is None:
        return None
    instance.pk = row[0]
    instance._state.adding = False
    instance._state.db = exists.db
    return instance


def update_returning(
    queryset: models.QuerySet[M], *, defer: tuple[str, ...] = (), **changes: Any
) -> M | None:
    """``queryset.update(**changes)`` that also reads the row back in the same statement
    (UPDATE ... RETURNING; PostgreSQL and SQLite 3.35+): a claim that reads what it claimed, one
    round trip instead of an UPDATE and a SELECT. Django compiles the UPDATE (filters and
    expressions as ``update`` takes them); returns the row as it is after the change, or None
    when nothing matched. For a queryset of at most one row (filter on the primary key).
    ``defer``: fields not read back (a large JSON document the caller may not need); the
    instance loads one when it is first used, as ``QuerySet.defer`` does."""
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(changes)
    sql, params = query.get_compiler(queryset.db).as_sql()
    quote = transaction.get_connection(queryset.db).ops.quote_name
    fields = [f for f in queryset.model._meta.concrete_fields if f.name not in defer]
    columns = ", ".join(quote(field.column) for field in fields)
    rows = queryset.model.objects.db_manager(queryset.db).raw(f"{sql} RETURNING {columns}", params)
    return next(iter(rows), None)


def refused_value(exc: DataError) -> str:
    """The message for a value the database refused (a 400: the input is at fault), with only
    the first line of the driver's text: later lines may quote the statement and its values."""
    problem = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"The database refused a value: {problem}"


def delete_in_batches(queryset: Any, *, batch_size: int, max_batches: int | None = None) -> int:
    """Delete the rows of ``queryset`` a batch at a time (short transactions, bounded locks);
    rows that stop matching meanwhile are left alone. Returns how many were deleted."""
    model = queryset.model
    deleted = batches = 0
    while max_batches is None or batches < max_batches:
        ids = list(queryset.order_by().values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        _, per_model = queryset.filter(pk__in=ids).delete()  # one transaction per batch
        deleted += per_model.get(model._meta.label, 0)
        batches += 1
    logger.info("purged %d %s rows", deleted, model._meta.verbose_name)
    return deleted


# --- bounded reads ----------------------------------------------------------------------------


class QueryTooSlow(Exception):
    """A read stopped by ``statement_timeout``: the caller words what to narrow."""


#: SET LOCAL, with the value as a parameter (SET itself takes none).
_SET_LOCAL = "SELECT set_config(%s, %s, true)"


@contextmanager
def statement_timeout(
    milliseconds: int, using: str = "default", *, postgresql: dict[str, str] | None = None
) -> Iterator[None]:
    """Stop the queries run inside after ``milliseconds`` and raise QueryTooSlow.

    For reads a person can make arbitrarily expensive (a text search over every event): one
    search must not hold a connection and a CPU for minutes. PostgreSQL gets ``SET LOCAL
    statement_timeout`` (and the other ``postgresql`` settings, e.g. planner switches) in a
    transaction of its own; SQLite has no such setting, so a progress handler interrupts the
    statement once the time is up. The queries must be evaluated inside the block (a lazy
    QuerySet returned from it runs unbounded)."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        wanted = {"statement_timeout": f"{int(milliseconds)}ms", **(postgresql or {})}
        with _interrupted_is_too_slow(), transaction.atomic(using=using):
            with connection.cursor() as cursor:
                before = {}
                for name, value in wanted.items():
                    cursor.execute("SELECT current_setting(%s)", [name])
                    (before[name],) = cursor.fetchone()
                    cursor.execute(_SET_LOCAL, [name, value])
            yield
            # Inside a caller's transaction the settings would outlive this block (a savepoint's
            # release keeps them): put them back. After a timeout the rollback has done so.
            with connection.cursor() as cursor:
                for name, value in before.items():
                    cursor.execute(_SET_LOCAL, [name, value])
        return
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    deadline = time.monotonic() + milliseconds / 1000
    raw = connection.connection
    # Called every 10,000 virtual machine instructions; a true result interrupts the statement.
    raw.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
    try:
        with _interrupted_is_too_slow():
            yield
    finally:
        raw.set_progress_handler(None, 0)


@contextmanager
def _interrupted_is_too_slow() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        cause = exc.__cause__
        cancelled = type(cause).__name__ == "QueryCanceled" or str(exc) == "interrupted"
        if not cancelled:
            raise
        raise QueryTooSlow(str(exc)) from exc
