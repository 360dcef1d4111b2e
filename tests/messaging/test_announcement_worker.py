"""A real Celery worker expands a confirmed announcement (default queue) and sends it (bulk queue)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from config.celery import app as celery_app
from messaging.models import Announcement, Delivery
from preferences.models import Contact
from tests.conftest import subprocess_env
from tests.factories import AnnouncementFactory, ContactFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

BASE_DIR = Path(__file__).resolve().parent.parent.parent


@contextmanager
def running_worker(queues: str, **env: str) -> Iterator[None]:
    """Run `celery worker` on `queues` until the block ends, once it answers a ping."""
    name = f"announcements-{time.monotonic_ns()}"
    process = subprocess.Popen(
        [
            *[sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-n", f"{name}@%h"],
            *["--concurrency", "1", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        ],
        cwd=BASE_DIR,
        env=subprocess_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not celery_app.control.ping(destination=[f"{name}@{socket.gethostname()}"], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{process.stdout.read() if process.stdout else ''}")
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_real_worker_sends_an_announcement_to_every_customer_and_the_admin_counts_match(admin_client):
    with celery_app.connection_for_write() as connection:
        for queue in ("default", "bulk"):
            connection.default_channel.queue_purge(queue)
    low = ContactFactory(share_of_customer=2, potential=Contact.Potential.NONE, status=Contact.Status.UNSUBSCRIBED)
    high = [ContactFactory(share_of_customer=80, potential=Contact.Potential.HIGH) for _ in range(6)]
    suppressed = ContactFactory(share_of_customer=50, suppressed_at="2026-01-01T00:00:00Z")
    ContactFactory(share_of_customer=0)  # a prospect is not a customer
    announcement = AnnouncementFactory(audience=Announcement.Audience.ALL_CUSTOMERS)

    with running_worker("default,bulk", EMAIL_BACKEND="anymail.backends.test.EmailBackend"):
        page = admin_client.get(f"/admin/messaging/announcement/{announcement.pk}/confirm/").content.decode()
        assert "will go to <strong>7</strong> recipients" in page
        admin_client.post(f"/admin/messaging/announcement/{announcement.pk}/confirm/", {"confirm": "yes"})
        assert wait_for(lambda: Delivery.objects.filter(status=Delivery.Status.SENT).count() == 7)

    sent = set(Delivery.objects.filter(status=Delivery.Status.SENT).values_list("contact_id", flat=True))
    assert sent == {low.pk, *(c.pk for c in high)}
    assert not Delivery.objects.filter(contact=suppressed).exists()
    page = admin_client.get(f"/admin/messaging/announcement/{announcement.pk}/change/").content.decode()
    assert "queued 0 · sending 0 · sent 7 · failed 0 · skipped 0" in page
    announcement.refresh_from_db()
    assert announcement.status == Announcement.Status.DONE and announcement.audience_count == 7
