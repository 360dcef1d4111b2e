"""Real Celery worker processes against the real broker: retries with backoff, the shared rate limit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from django.conf import settings

from cadence import tasks
from config.celery import app as celery_app
from messaging.models import Delivery
from tests import esp_backend
from tests.conftest import subprocess_env
from tests.factories import DeliveryFactory
from tests.workers import purge_queues

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(__file__).resolve().parents[2]
QUEUES = ["welcome", "bulk"]
WORKER_COMMAND = [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo", "--without-gossip"]
WORKER_COMMAND += ["--without-mingle", "-l", "warning"]


def _empty_queues() -> None:
    purge_queues(*QUEUES)


@contextmanager
def workers(count: int, **env: str) -> Iterator[list[subprocess.Popen]]:
    """Start `count` solo-pool workers on the send queues, wait until each answers a ping.

    Solo workers (one process each) start and stop in a few seconds, unlike tests.workers' prefork one.
    """
    _empty_queues()
    tag = f"deliv{os.getpid()}"
    names = [f"{tag}-{i}@test" for i in range(count)]
    worker_env = subprocess_env(EMAIL_BACKEND="tests.esp_backend.EmailBackend", **env)
    logs = [open(BASE_DIR / "var" / f"worker-{tag}-{i}.log", "w") for i in range(count)]  # noqa: SIM115
    procs = [
        subprocess.Popen(
            [*WORKER_COMMAND, "-Q", ",".join(QUEUES), "-n", name],
            cwd=BASE_DIR,
            env=worker_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for name, log in zip(names, logs, strict=True)
    ]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replies = celery_app.control.ping(destination=names, timeout=0.5) or []
            if len(replies) == count:
                break
            assert all(p.poll() is None for p in procs), "a worker died while starting"
        else:
            raise AssertionError("the workers did not start within 60 s")
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()
        _empty_queues()


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the workers")


def nurture(n: int) -> list[Delivery]:
    return DeliveryFactory.create_batch(n, template="welcome")


def test_a_worker_retries_transient_esp_errors_with_growing_waits_and_sends_once():
    esp_backend.script(500, 429, "ok")
    (delivery,) = nurture(1)
    with workers(1, SEND_RETRY_BACKOFF="1", SEND_RETRY_BACKOFF_MAX="60"):
        tasks.send_batch.delay([str(delivery.id)])
        wait_for(lambda: Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.SENT)

    calls = esp_backend.calls()
    assert [c["status"] for c in calls] == [500, 429, 200]
    first_wait, second_wait = calls[1]["at"] - calls[0]["at"], calls[2]["at"] - calls[1]["at"]
    # retry n waits between half and all of 1 s * 2**n
    assert 0.5 <= first_wait < 3, first_wait
    assert 1.0 <= second_wait < 4, second_wait
    delivery.refresh_from_db()
    assert delivery.attempts == 3 and delivery.esp_message_id != ""


def test_a_worker_records_a_permanent_esp_error_and_does_not_retry_it():
    esp_backend.script(400)
    (delivery,) = nurture(1)
    with workers(1, SEND_RETRY_BACKOFF="0.2"):
        tasks.send_batch.delay([str(delivery.id)])
        wait_for(lambda: Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.FAILED)
        time.sleep(1)  # time enough for a wrong retry to show

    assert [c["status"] for c in esp_backend.calls()] == [400]
    delivery.refresh_from_db()
    assert delivery.error.startswith("permanent: 400") and delivery.attempts == 1


def test_the_send_rate_limit_holds_across_two_worker_processes():
    rate = 5
    esp_backend.script()
    redis.Redis.from_url(settings.REDIS_URL).delete("ratelimit:test-shared-rate")
    deliveries = nurture(20)
    ids = [str(d.id) for d in deliveries]
    with workers(2, ESP_MAX_SEND_RATE=str(rate), ESP_RATE_LIMIT_KEY="test-shared-rate", TEST_ESP_BATCH_LIMIT="2"):
        for start in range(0, len(ids), 2):
            tasks.send_batch.delay(ids[start : start + 2])
        wait_for(lambda: Delivery.objects.filter(status=Delivery.Status.SENT).count() == len(ids))

    calls = esp_backend.calls()
    sends = sorted((c["at"], c["pid"]) for c in calls for _ in c["to"])
    assert len(sends) == len(ids), "each delivery went to the ESP once"
    assert sorted(e for c in calls for e in c["to"]) == sorted(d.contact.email for d in deliveries)
    assert len({pid for _, pid in sends}) == 2, "both workers sent"
    busiest = max(sum(1 for other, _ in sends if at <= other < at + 0.95) for at, _ in sends)
    assert busiest <= rate, f"{busiest} messages within one second"
    span = sends[-1][0] - sends[0][0]
    assert span >= (len(ids) / rate - 1) * 0.95, span
