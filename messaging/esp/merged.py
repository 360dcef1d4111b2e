"""One anymail batch call (merge data and headers) for an ESP that personalises many messages at once."""

from __future__ import annotations

from anymail.exceptions import AnymailRecipientsRefused
from anymail.message import AnymailMessage
from django.core.mail import get_connection

from messaging.esp.outcomes import (
    REFUSED_RECIPIENT_STATUSES,
    UNKNOWN_STATUS_NOTE,
    SendOutcome,
    _addr_specs,
    _message_id,
    _recipient_statuses,
    outcome_for_error,
)


def send_merged(message: AnymailMessage) -> dict[str, SendOutcome]:
    """Send one batch message in one ESP call; return each `to` address's outcome, keyed as given.

    Per-recipient results come from anymail's `anymail_status.recipients`; an error for the whole
    call is every recipient's outcome.
    """
    addresses = _addr_specs(message.to)
    connection = get_connection()
    try:
        connection.send_messages([message])
    except AnymailRecipientsRefused:
        pass  # every recipient refused: anymail_status says how, read below
    except Exception as exc:
        outcome = outcome_for_error(exc)
        return dict.fromkeys(addresses, outcome)
    recipients = _recipient_statuses(message)
    outcomes = {}
    for address in addresses:
        recipient = recipients.get(address.lower())
        if recipient is None:
            outcomes[address] = SendOutcome("failed", error="recipient refused: no status from the ESP")
        elif recipient.status in REFUSED_RECIPIENT_STATUSES:
            outcomes[address] = SendOutcome("failed", error=f"recipient refused: {recipient.status}")
        else:
            note = UNKNOWN_STATUS_NOTE if recipient.status == "unknown" else ""
            outcomes[address] = SendOutcome("sent", esp_message_id=_message_id(recipient.message_id), error=note)
    return outcomes
