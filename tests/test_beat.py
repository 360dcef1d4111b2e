"""Two real beats at once: the second idles behind the lease, so nothing is ticked or sent twice; when
the first stops, the second takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.models import Count
from django.utils import timezone

from cadence.models import Schedule
from config.beat import lease_key
from messaging.models import Delivery
from tests.conftest import subprocess_env
from tests.factories import ContactFactory
from tests.workers import BASE_DIR, purge_queues, running_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

TICK_SENT = "Sending due task cadence-tick"


@contextmanager
def running_beat(log: Path) -> Iterator[subprocess.Popen]:
    """Run `celery beat` with the project's scheduler, ticking every second, logging to `log`."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO", "--max-interval", "1"],
            cwd=BASE_DIR,
            env=subprocess_env(CADENCE_TICK_SECONDS="1", BEAT_LOCK_SECONDS="3"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def ticks_sent(log: Path) -> int:
    return log.read_text().count(TICK_SENT)


def test_two_beats_at_once_tick_once_and_send_each_mail_once(tmp_path, settings):
    from cadence.heartbeat import redis_client

    redis_client(settings.REDIS_URL).delete(lease_key())
    purge_queues("default", "bulk", "welcome")
    now = timezone.now()
    contacts = ContactFactory.create_batch(20)
    Schedule.objects.bulk_create(
        [Schedule(contact=c, next_due_at=now - timedelta(minutes=1), last_sent_at=now - timedelta(days=40),
                  welcome_step=9) for c in contacts]
    )  # fmt: skip
    first_log, second_log = tmp_path / "beat-1.log", tmp_path / "beat-2.log"
    with (
        running_worker(queues="default,bulk,welcome", name="beats", EMAIL_BACKEND="anymail.backends.test.EmailBackend"),
        running_beat(first_log) as first,
    ):
        assert wait_for(lambda: ticks_sent(first_log) >= 1, timeout=60), first_log.read_text()
        with running_beat(second_log):
            assert wait_for(lambda: "beat: Starting" in second_log.read_text(), timeout=60), second_log.read_text()
            both_from = (ticks_sent(first_log), time.monotonic())
            time.sleep(6)
            ticked = ticks_sent(first_log) - both_from[0]
            elapsed = time.monotonic() - both_from[1]
            assert ticks_sent(second_log) == 0, "the second beat sent while the first held the lease"
            assert "idles" in second_log.read_text()
            assert 2 <= ticked <= elapsed + 1, f"{ticked} ticks in {elapsed:.1f} s: one beat, one tick a second"

            first.send_signal(signal.SIGTERM)
            first.wait(timeout=20)
            assert wait_for(lambda: ticks_sent(second_log) >= 2, timeout=30), second_log.read_text()
            assert "holds the lease" in second_log.read_text()

        assert wait_for(
            lambda: (
                Delivery.objects.filter(status=Delivery.Status.SENT).count() == 20
                and not Delivery.objects.filter(status__in=["queued", "sending"]).exists()
            ),
            timeout=60,
        )
    sent = Delivery.objects.filter(kind="nurture", status=Delivery.Status.SENT)
    assert sent.count() == 20
    assert not sent.values("contact").annotate(n=Count("id")).filter(n__gt=1).exists(), "a contact got two mails"
