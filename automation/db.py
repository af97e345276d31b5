"""Database helpers shared by the domains."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, TypeVar

from django.db import models, transaction

M = TypeVar("M", bound=models.Model)


def insert(model: type[M], **fields: Any) -> M:
    """INSERT a row that may hit a unique constraint (IntegrityError for the caller to handle).

    Inside a transaction it gets a savepoint, so the IntegrityError leaves the caller's
    transaction usable; in autocommit (the hot paths: webhooks, steps) the lone INSERT commits
    by itself, without the BEGIN and COMMIT round trips an atomic block would add."""
    if transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            return model.objects.create(**fields)
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
    savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cursor:
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
    # A savepoint inside a transaction, as ``insert``, so a conflict leaves it usable.
    savepoint = transaction.atomic(using=exists.db) if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cursor:
        cursor.execute(sql, [*values, *params])
        row = cursor.fetchone()
    if row is None:
        return None
    instance.pk = row[0]
    instance._state.adding = False
    instance._state.db = exists.db
    return instance


def update_returning(model: type[M], changes: dict[str, Any], **where: Any) -> M | None:
    """UPDATE the row matching ``where`` (exact values, None for IS NULL) and read it back in the
    same statement (UPDATE ... RETURNING; PostgreSQL and SQLite 3.35+). Returns the row as it is
    after the change, or None when nothing matched: a claim that reads what it claimed, one
    round trip instead of an UPDATE and a SELECT."""
    connection = transaction.get_connection()
    opts, quote = model._meta, connection.ops.quote_name
    sets, conditions, params = [], [], []
    for name, value in changes.items():
        field = opts.get_field(name)
        sets.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    for name, value in where.items():
        field = opts.get_field(name)
        if value is None:
            conditions.append(f"{quote(field.column)} IS NULL")
        else:
            conditions.append(f"{quote(field.column)} = %s")
            params.append(field.get_db_prep_value(value, connection, prepared=False))
    columns = ", ".join(quote(field.column) for field in opts.concrete_fields)
    # Identifiers come from the model's metadata (quoted); every value is a parameter.
    sql = (
        f"UPDATE {quote(opts.db_table)} SET {', '.join(sets)} "  # noqa: S608
        f"WHERE {' AND '.join(conditions)} RETURNING {columns}"
    )
    return next(iter(model.objects.raw(sql, params)), None)
