"""A real worker SIGKILLed while its lanes hand a batch to an SMTP relay: what the relay took is recorded.

The relay (bench/smtp_sink.py) counts every mail it accepted. Whatever it accepted that the database
does not say `sent` is what the silence guard later treats as lost and sends again: a duplicate.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest

from bench.smtp_sink import SmtpSink
from cadence.guard import silence_repair
from cadence.tick import schedules_claim_due
from messaging.models import Delivery
from tests.cadence.test_workers import due_contacts, settled
from tests.cadence.workers import kill, purge, wait_for, worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.postgres]

LANES = 8
BATCH = 200


def test_a_worker_killed_mid_batch_leaves_at_most_one_mail_per_lane_taken_by_the_relay_and_unrecorded(
    postgres_only,
):
    purge("bulk", "welcome")
    due_contacts(BATCH)
    # Three commands a mail (MAIL, RCPT, DATA), 15 ms each: eight lanes take the batch in about 1.2 s.
    with SmtpSink(latency=0.015) as sink:
        relay = {"EMAIL_URL": f"smtp://127.0.0.1:{sink.port}", "SMTP_SEND_CONCURRENCY": str(LANES)}
        with worker("doomed", **relay) as doomed:
            result = schedules_claim_due(batch_size=BATCH)
            assert result.claimed == BATCH
            assert wait_for(lambda: sink.stats.messages >= 40, timeout=60)
            kill(doomed)
        time.sleep(0.5)  # mails whose DATA the relay was answering when the worker died
        accepted = sink.stats.messages
        sent = Delivery.objects.filter(status="sent").count()
        assert accepted < BATCH, "killed in the middle of the batch"
        assert 0 <= accepted - sent <= LANES, f"the relay took {accepted} mails, {sent} are recorded sent"

        # The guard treats what is stuck in "sending" as lost and sends it again, late.
        stuck = Delivery.objects.filter(status="sending").count()
        counts = silence_repair(stuck_after=timedelta(0))
        assert counts.lost_sends == stuck
        schedules_claim_due()
        with worker("survivor", **relay):
            assert wait_for(settled, timeout=120)
        time.sleep(0.2)
        twice = {address for address, n in Counter(sink.stats.recipients).items() if n > 1}
    # One mail per slot: every contact reached, and at most one duplicate per lane the kill cut short.
    assert len(set(sink.stats.recipients)) == BATCH
    assert len(twice) == accepted - sent <= LANES
