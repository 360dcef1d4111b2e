"""The audit trail of bulk and data-rights operations: who, when, what and how many rows."""

from __future__ import annotations

from typing import Any

from preferences.models import AuditEntry


def audit_record(*, action: str, rows: int, user: Any = None, actor: str = "", **detail: Any) -> AuditEntry:
    """Append one entry for `action` on `rows` rows by `user` (or by `actor`, a name, for a worker's job)."""
    user_id = getattr(user, "pk", None) if user is not None else None
    name = user.get_username() if user is not None and user_id is not None else actor
    return AuditEntry.objects.create(action=action, rows=rows, actor=name[:150], actor_id=user_id, detail=detail)
