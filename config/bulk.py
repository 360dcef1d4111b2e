"""Write many rows in one statement: a VALUES list as a common table expression, typed for the database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from django.db import connection, models


def values_cte(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> tuple[str, list[Any]]:
    """Return `WITH v(<columns>) AS (VALUES ...)` and its parameters, each value prepared by the model's field
    of that name (attnames such as `contact_id` work). Join it with an UPDATE ... FROM v.

    PostgreSQL gets explicit casts (a bare parameter in VALUES is text); SQLite stores them as they come.
    """
    fields = [cast(models.Field, model._meta.get_field(column)) for column in columns]
    if connection.vendor == "postgresql":
        slots = [f"CAST(%s AS {field.cast_db_type(connection)})" for field in fields]
    else:
        slots = ["%s"] * len(fields)
    row_sql = f"({', '.join(slots)})"
    params: list[Any] = []
    for row in rows:
        params += [field.get_db_prep_value(value, connection) for field, value in zip(fields, row, strict=True)]
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    return f"WITH v({names}) AS (VALUES {', '.join([row_sql] * len(rows))})", params
