from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from anymail.signals import post_send, pre_send


class EspFaults:
    """Scripted ESP answers for anymail's test backend, set on each message through `pre_send`.

    anymail.backends.test.EmailBackend raises the message's `anymail_test_response` when it is an
    AnymailAPIError, and otherwise answers with it; `None` means an ordinary success.
    """

    def __init__(self) -> None:
        self.script: list[Any] = []
        self.accepted: Counter[str] = Counter()  # delivery id -> messages the ESP accepted

    def then(self, *responses: Any) -> EspFaults:
        self.script.extend(responses)
        return self

    def _pre_send(self, sender: Any, message: Any, **kwargs: Any) -> None:
        if self.script:
            response = self.script.pop(0)
            if response is not None:
                message.anymail_test_response = response

    def _post_send(self, sender: Any, message: Any, status: Any, **kwargs: Any) -> None:
        merge_metadata = getattr(message, "merge_metadata", None)
        if isinstance(merge_metadata, dict) and merge_metadata:
            pairs = [(meta["delivery_id"], email) for email, meta in merge_metadata.items()]
        else:
            pairs = [(message.metadata["delivery_id"], email) for email in message.to]
        for delivery_id, email in pairs:
            recipient = status.recipients.get(email)
            if recipient is not None and recipient.status in {"sent", "queued"}:
                self.accepted[delivery_id] += 1


@pytest.fixture
def esp_faults() -> Iterator[EspFaults]:
    faults = EspFaults()
    pre_send.connect(faults._pre_send, dispatch_uid="test-esp-faults-pre")
    post_send.connect(faults._post_send, dispatch_uid="test-esp-faults-post")
    yield faults
    pre_send.disconnect(dispatch_uid="test-esp-faults-pre")
    post_send.disconnect(dispatch_uid="test-esp-faults-post")
