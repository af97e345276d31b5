"""The GIN index of the event data text search (PostgreSQL only; SQLite searches without one).

Its expression is ``events.selectors.DATA_TSVECTOR`` over the ``data`` column: a query uses the
index only when its expression is the same, so the two change together.
"""

from django.db import migrations

INDEX = "event_data_search_idx"
CREATE = (
    f"CREATE INDEX IF NOT EXISTS {INDEX} ON events_event USING gin "
    "(jsonb_to_tsvector('simple'::regconfig, data, '[\"string\", \"numeric\"]'::jsonb))"
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("events", "0007_schema_versions_projections")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
