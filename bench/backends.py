"""The anymail test backend for long runs: anymail builds every payload as for a real ESP, and nothing is kept.

anymail's own test backend appends each message to `mail.outbox` and finds its id by searching that list;
in a long run the list grows without end, and clearing it from one lane while another lane searches it
fails that lane's message. This one keeps no outbox and numbers the messages instead.
"""

from __future__ import annotations

import itertools
from typing import Any

from anymail.backends.test import EmailBackend as TestBackend
from anymail.message import AnymailRecipientStatus

_message_ids = itertools.count(1)


class EmailBackend(TestBackend):
    def post_to_esp(self, payload: Any, message: Any) -> dict[str, Any]:
        message.anymail_test_params = payload.get_params()
        status = AnymailRecipientStatus(message_id=f"bench-{next(_message_ids)}", status="sent")
        return {"recipient_status": dict.fromkeys(payload.recipient_emails, status)}
