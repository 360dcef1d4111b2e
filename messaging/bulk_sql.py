"""Write many rows in one statement: a VALUES list as a common table expression, typed for the database."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models.lookups import In

# Values PostgreSQL's driver takes as they are, by field type: no per-value preparation needed.
_NATIVE: dict[str, type] = {
    "UUIDField": uuid.UUID,
    "CharField": str,
    "TextField": str,
    "EmailField": str,
    "SlugField": str,
    "IntegerField": int,
    "BigIntegerField": int,
    "SmallIntegerField": int,
    "PositiveIntegerField": int,
    "PositiveSmallIntegerField": int,
    "PositiveBigIntegerField": int,
    "AutoField": int,
    "BigAutoField": int,
    "SmallAutoField": int,
    "DateTimeField": datetime,
}


def _column(field: models.Field, values: list[Any], db: Any = connection) -> list[Any]:
    """Return the column's values prepared by `field`, or as they are when each is of its native type already."""
    target = field.target_field if field.is_relation else field  # type: ignore[attr-defined]
    native = _NATIVE.get(target.get_internal_type())
    if native is datetime:
        aware = settings.USE_TZ  # Django makes them aware (or naive) to match; as they are when they already are
        if all(value is None or (type(value) is datetime and (value.tzinfo is not None) == aware) for value in values):
            return values
    elif native is not None and all(value is None or type(value) is native for value in values):
        return values
    return [field.get_db_prep_value(value, db) for value in values]


def values_cte(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> tuple[str, list[Any]]:
    """Return `WITH v(<columns>) AS (...)` and its parameters, each value prepared by the model's field
    of that name (attnames such as `contact_id` work). Join it with an UPDATE ... FROM v, or INSERT from it.

    PostgreSQL gets one typed array per column, unnested (a few parameters however many rows: the
    statement's size and its preparation stay flat); SQLite a VALUES list, stored as they come.
    """
    db = connections[DEFAULT_DB_ALIAS]  # the connection itself: every attribute of the proxy is a lookup
    fields, head = _cte_head(model, tuple(columns), db.vendor)
    if db.vendor == "postgresql":
        return head, [_column(field, [row[index] for row in rows], db) for index, field in enumerate(fields)]
    row_sql = f"({', '.join(['%s'] * len(fields))})"
    params: list[Any] = []
    for row in rows:
        params += [field.get_db_prep_value(value, db) for field, value in zip(fields, row, strict=True)]
    return f"{head} (VALUES {', '.join([row_sql] * len(rows))})", params


@lru_cache(maxsize=64)
def _cte_head(model: type[models.Model], columns: tuple[str, ...], vendor: str) -> tuple[list[models.Field], str]:
    """The fields and the statement's text up to its rows: the same for every call with these columns."""
    db = connections[DEFAULT_DB_ALIAS]
    fields = [cast(models.Field, model._meta.get_field(column)) for column in columns]
    names = ", ".join(db.ops.quote_name(column) for column in columns)
    if vendor == "postgresql":
        unnest = ", ".join(f"CAST(%s AS {field.cast_db_type(db)}[])" for field in fields)
        return fields, f"WITH v({names}) AS (SELECT * FROM unnest({unnest}))"
    return fields, f"WITH v({names}) AS"


class Unindexed(models.Func):
    """The column as the query planner cannot match it to an index (`status || ''`, `item_id + 0`).

    For a filter that must never drive the plan whatever the statistics say, beside a list of primary keys
    or of contacts: right after a tick queues 100,000 mails, or a round writes 300,000 receipts, the
    statistics still call them rare, and the planner would scan every queued row (or every receipt of the
    items) for each batch instead of looking up its 200 rows.
    """

    def as_sql(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        sql, params = compiler.compile(self.source_expressions[0])
        text = isinstance(self.output_field, models.CharField | models.TextField)
        return f"({sql} {'||' if text else '+'} %s)", [*params, "" if text else 0]


@models.Field.register_lookup
class AnyOf(In):
    """`field__any=values`: `field IN (...)` everywhere, `field = ANY(%s)` with one array on PostgreSQL.

    A list of 200 ids is then one parameter, not 200 quoted one by one, and the statement's text is the
    same for every batch.
    """

    lookup_name = "any"

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        if self.rhs_is_direct_value():
            values = [value for value in self.rhs if value is not None]
            if not values:
                raise EmptyResultSet
            lhs, lhs_params = self.process_lhs(compiler, connection)
            field = self.lhs.output_field
            array = _column(field, [field.get_prep_value(value) for value in values])
            return f"{lhs} = ANY(CAST(%s AS {field.cast_db_type(connection)}[]))", [*lhs_params, array]
        sql, params = super().as_sql(compiler, connection)
        return sql, list(params)


def changed_rows(cursor: Any) -> int:
    """Return how many rows the statement just run on `cursor` changed.

    Python's sqlite3 (before 3.12) counts rows only for statements that begin with INSERT, UPDATE,
    DELETE or REPLACE and reports -1 after `WITH v AS (...) UPDATE ...`; SQLite's own changes() knows.
    """
    if cursor.rowcount >= 0 or connection.vendor != "sqlite":
        return cursor.rowcount
    cursor.execute("SELECT changes()")
    return cursor.fetchone()[0]
