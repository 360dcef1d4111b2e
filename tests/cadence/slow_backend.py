"""The anymail test backend, slowed down so that a test can kill a worker in the middle of a batch."""

from __future__ import annotations

import os
import time
from typing import Any

from anymail.backends.test import EmailBackend as TestBackend


class EmailBackend(TestBackend):
    def send_messages(self, email_messages: Any) -> int:
        time.sleep(float(os.environ.get("SLOW_SEND_SECONDS", "0.05")))
        return super().send_messages(email_messages)
