"""Hand messages to the ESP at the ESP's own scale, and say what became of each.

Two ways in, both for whatever `EMAIL_BACKEND` is configured (an anymail ESP, Django's SMTP backend
for a bank's own relay, the file or test backends):

- `send_messages`: one message per recipient, sent by a bounded pool of lanes inside the worker
  (`ESP_SEND_CONCURRENCY`; 1 sends one after the other in the calling thread). Each lane opens one
  connection for the chunk and reuses it: one SMTP connection, or one requests Session for anymail's
  HTTP backends. The work is waiting on the network, so threads are enough. Where the ESP has an
  endpoint that takes many distinct messages in one call (a `MessageBatchApi`: Postmark's
  `/email/batch`), each lane sends whole groups of messages per call instead of one.
- `send_merged`: one anymail batch call (`merge_data`, `merge_metadata`, `merge_headers`) for an ESP
  that takes many personalised messages at once (`ESP_BATCH_SENDING`); `send_merged_stream` makes
  several such calls at once on the same lanes, each recorded by the caller before its lane takes another.

Nothing here touches the database: the caller records the outcomes. Every message gets an outcome;
one failing message never fails the others.
"""

from messaging.esp.lanes import send_messages, send_stream
from messaging.esp.merged import send_merged, send_merged_stream
from messaging.esp.outcomes import SendOutcome, outcome_for_error, retry_after_seconds
from messaging.esp.postmark import MessageBatchApi, PostmarkBatchApi

__all__ = [
    "MessageBatchApi",
    "PostmarkBatchApi",
    "SendOutcome",
    "outcome_for_error",
    "retry_after_seconds",
    "send_merged",
    "send_merged_stream",
    "send_messages",
    "send_stream",
]
