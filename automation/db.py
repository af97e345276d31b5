"""Database helpers shared by the domains."""

from __future__ import annotations

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
