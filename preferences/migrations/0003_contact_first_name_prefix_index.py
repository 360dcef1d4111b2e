"""An index for the admin search by the start of a first name (PostgreSQL; SQLite scans, it is small there).

Addresses need none: they are stored lower-cased and Django gives the unique column a varchar_pattern_ops
index, which serves `LIKE 'prefix%'`.
"""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

INDEX = "contact_first_name_prefix"


def create_index(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON preferences_contact (lower(first_name) text_pattern_ops)"
        )


def drop_index(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("preferences", "0002_contact_general_updates_leave_feedback")]

    operations = [migrations.RunPython(create_index, drop_index)]
