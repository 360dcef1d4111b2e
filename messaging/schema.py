"""Index moves for migrations: drop a single-column index another one covers, or give a column's index a
name of its own without rebuilding it (PostgreSQL renames in place; a large table is never locked for a
rebuild)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class IndexMove:
    """A column's `db_index=True` indexes on `table`: dropped (`name` None), or kept as one index `name`."""

    table: str
    column: str
    name: str | None


def move_indexes(moves: Sequence[IndexMove], *, reverse: bool = False) -> Callable[[Any, Any], None]:
    """Return the RunPython function that makes the moves (or, with `reverse`, gives back Django's own)."""

    def run(apps: Any, schema_editor: Any) -> None:
        for move in moves:
            (_restore if reverse else _move)(schema_editor, move)

    return run


def _column_indexes(schema_editor: Any, table: str, column: str) -> list[str]:
    """Return the names of the plain (not unique, not primary key) indexes on exactly `column`."""
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(cursor, table)
    return sorted(
        name
        for name, info in constraints.items()
        if info["index"] and not info["unique"] and not info["primary_key"] and info["columns"] == [column]
    )


def _move(schema_editor: Any, move: IndexMove) -> None:
    quote = schema_editor.quote_name
    existing = _column_indexes(schema_editor, move.table, move.column)
    kept = None
    if move.name is not None and move.name in existing:
        kept = move.name
    elif move.name is not None and schema_editor.connection.vendor == "postgresql":
        kept = next((name for name in existing if not name.endswith("_like")), None)
        if kept is not None:
            schema_editor.execute(f"ALTER INDEX {quote(kept)} RENAME TO {quote(move.name)}")
    for name in existing:
        if name != kept:
            schema_editor.execute(schema_editor.sql_delete_index % {"table": quote(move.table), "name": quote(name)})
    if move.name is not None and kept is None:
        schema_editor.execute(f"CREATE INDEX {quote(move.name)} ON {quote(move.table)} ({quote(move.column)})")


def _restore(schema_editor: Any, move: IndexMove) -> None:
    quote = schema_editor.quote_name
    default = schema_editor._create_index_name(move.table, [move.column], suffix="")
    if move.name is not None:
        schema_editor.execute(schema_editor.sql_delete_index % {"table": quote(move.table), "name": quote(move.name)})
    schema_editor.execute(f"CREATE INDEX {quote(default)} ON {quote(move.table)} ({quote(move.column)})")
    if move.name is not None and schema_editor.connection.vendor == "postgresql":
        like = schema_editor._create_index_name(move.table, [move.column], suffix="_like")
        schema_editor.execute(
            f"CREATE INDEX {quote(like)} ON {quote(move.table)} ({quote(move.column)} varchar_pattern_ops)"
        )
