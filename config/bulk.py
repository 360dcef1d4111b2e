"""Write many rows in one statement: a VALUES list as a common table expression, typed for the database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from django.db import connection, models


def values_cte(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> tuple[str, list[Any]]:
    """Return `WITH v(<columns>) AS (...)` and its parameters, each value prepared by the model's field
    of that name (attnames such as `contact_id` work). Join it with an UPDATE ... FROM v, or INSERT from it.

    PostgreSQL gets one typed array per column, unnested (a few parameters however many rows: the
    statement's size and its preparation stay flat); SQLite a VALUES list, stored as they come.
    """
    fields = [cast(models.Field, model._meta.get_field(column)) for column in columns]
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    if connection.vendor == "postgresql":
        arrays = [
            [field.get_db_prep_value(row[index], connection) for row in rows] for index, field in enumerate(fields)
        ]
        unnest = ", ".join(f"CAST(%s AS {field.cast_db_type(connection)}[])" for field in fields)
        return f"WITH v({names}) AS (SELECT * FROM unnest({unnest}))", arrays
    row_sql = f"({', '.join(['%s'] * len(fields))})"
    params: list[Any] = []
    for row in rows:
        params += [field.get_db_prep_value(value, connection) for field, value in zip(fields, row, strict=True)]
    return f"WITH v({names}) AS (VALUES {', '.join([row_sql] * len(rows))})", params
