"""Every idempotency key of the producers, in one place. One Delivery per key, so one mail per slot.

Each format is written once; `key` fills it in Python and `key_sql` turns it into SQL for the tick's
claim statement, so the two can never drift apart.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

WELCOME = "welcome:{contact}:{step}"
NURTURE = "nurture:{contact}:{slot}"
REENGAGEMENT = "reengagement:{contact}:{day}"
REMINDER = "reminder:{product}:{rule}:{date}"
ANNOUNCEMENT = "announcement:{announcement}:{contact}"
CONFIRMATION = "{kind}:{contact}:{event}"
LINK_REQUEST = "link_request:{contact}:{request}"
INVITATION = "invitation:{contact}:{event}"
WELCOME_RESEND = "welcome:{contact}:resend:{stamp}"
LATE = "{key}:late"

# Send keys: which send a delivery belongs to, for the bounce and complaint brake (messaging/brake.py).
ANNOUNCEMENT_SEND = "announcement:{announcement}"
NURTURE_SEND = "nurture:{day}"
IMPORT_SEND = "import:{job}"

_FIELD = re.compile(r"\{(\w+)\}")


def key(format: str, **values: Any) -> str:
    """Return the key `format` filled with `values`."""
    return format.format(**values)


def key_sql(format: str, **expressions: str) -> str:
    """Return SQL that builds the key `format` from SQL `expressions` (one per field), joined with ||."""
    parts: list[str] = []
    position = 0
    for match in _FIELD.finditer(format):
        if match.start() > position:
            parts.append("'" + format[position : match.start()].replace("'", "''") + "'")
        parts.append(f"CAST({expressions[match.group(1)]} AS text)")
        position = match.end()
    if position < len(format):
        parts.append("'" + format[position:].replace("'", "''") + "'")
    return " || ".join(parts)


def welcome_key(contact_id: Any, step: int) -> str:
    return key(WELCOME, contact=contact_id, step=step)


def nurture_key(contact_id: Any, slot: int) -> str:
    return key(NURTURE, contact=contact_id, slot=slot)


def reengagement_key(contact_id: Any, day: date) -> str:
    return key(REENGAGEMENT, contact=contact_id, day=day.isoformat())


def reminder_key(product_id: Any, rule_id: Any, event_date: date) -> str:
    """One reminder per product, rule and date (a moved date is a new one)."""
    return key(REMINDER, product=product_id, rule=rule_id, date=event_date.isoformat())


def announcement_prefix(announcement_id: Any) -> str:
    return ANNOUNCEMENT.split("{contact}")[0].format(announcement=announcement_id)


def announcement_key(announcement_id: Any, contact_id: Any) -> str:
    return key(ANNOUNCEMENT, announcement=announcement_id, contact=contact_id)


def confirmation_key(kind: str, contact_id: Any, event_id: Any) -> str:
    return key(CONFIRMATION, kind=kind, contact=contact_id, event=event_id)


def link_request_key(contact_id: Any, request_id: str) -> str:
    """One mail per request for a fresh link (a new request id each time someone asks)."""
    return key(LINK_REQUEST, contact=contact_id, request=request_id)


def invitation_key(contact_id: Any, event_id: Any) -> str:
    """One invitation to confirm per ledger entry of kind 'invited'."""
    return key(INVITATION, contact=contact_id, event=event_id)


def welcome_resend_key(contact_id: Any, stamp: str) -> str:
    return key(WELCOME_RESEND, contact=contact_id, stamp=stamp)


def late_key(original: str) -> str:
    """The key of a lost delivery sent again, late."""
    return key(LATE, key=original)


def announcement_send_key(announcement_id: Any) -> str:
    """The send of one announcement."""
    return key(ANNOUNCEMENT_SEND, announcement=announcement_id)


def nurture_send_key(day: date) -> str:
    """The nurture round of one day (the claim day, UTC)."""
    return key(NURTURE_SEND, day=day.isoformat())


def import_send_key(job_id: Any) -> str:
    """The mail to one import's contacts."""
    return key(IMPORT_SEND, job=job_id)
