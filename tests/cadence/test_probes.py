from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from bench.redisproc import RedisProcess
from cadence import heartbeat
from cadence.ops import figures as ops
from tests.conftest import subprocess_env

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(__file__).resolve().parents[2]


def wait_until(predicate, timeout: float, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


@pytest.fixture(scope="module")
def spare_redis() -> Iterator[RedisProcess]:
    """A redis-server of this test module alone, so it can be killed (whichever broker the suite uses).

    Celery prefers the CELERY_BROKER_URL environment variable to the broker an app is given, so it is
    lifted for the module: the probes and the pings must reach this Redis.
    """
    server = RedisProcess().start()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CELERY_BROKER_URL", raising=False)
        yield server
    server.cleanup()


@pytest.fixture(scope="module")
def worker(spare_redis, django_db_setup, django_db_blocker) -> Iterator[subprocess.Popen]:
    """A real Celery worker consuming from the spare Redis."""
    with django_db_blocker.unblock():
        env = subprocess_env(CELERY_BROKER_URL=spare_redis.url(), REDIS_URL=spare_redis.url())
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default", "-P", "solo"),
            *("-n", f"probes-{spare_redis.port}@%h", "--without-mingle", "--without-gossip", "-l", "WARNING"),
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    probe = Celery("probe", broker=spare_redis.url(), set_as_current=False)
    answered = wait_until(lambda: probe.control.ping(timeout=0.5), timeout=60)
    if not answered:
        process.kill()
        pytest.fail("the Celery worker did not answer a ping within 60 s")
    yield process
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def pointed_at_spare_redis(settings, spare_redis, worker) -> RedisProcess:
    settings.CELERY_BROKER_URL = spare_redis.url()
    settings.REDIS_URL = spare_redis.url()
    settings.PROBE_CHECKS = ["database", "broker", "tick", "worker"]
    settings.PROBE_WORKER_TIMEOUT = 2.0
    settings.PROBE_WORKER_CACHE_SECONDS = 1
    settings.METRICS_TOKEN = TOKEN
    heartbeat.tick_record()
    return spare_redis


TOKEN = "probes-test-token"


def probes(client) -> tuple[int, dict]:
    response = client.get("/probes", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    return response.status_code, response.json()


def test_probes_is_200_with_every_check_when_all_is_well(client, pointed_at_spare_redis):
    status, body = probes(client)

    assert status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "tick", "worker"}
    assert all(check["ok"] for check in body["checks"].values())
    assert "probes-" in body["checks"]["worker"]["detail"]
    anonymous = client.get("/probes")
    assert anonymous.json()["checks"]["worker"] == "ok" and b"probes-" not in anonymous.content, "no host names"


def test_probes_goes_503_when_redis_is_down_and_back_to_200(client, pointed_at_spare_redis):
    pointed_at_spare_redis.kill()
    try:
        status, body = probes(client)
        assert status == 503
        assert body["checks"]["broker"]["ok"] is False
        assert body["checks"]["tick"]["ok"] is False
        assert body["checks"]["worker"]["ok"] is False
        assert body["checks"]["database"]["ok"] is True
    finally:
        pointed_at_spare_redis.start()
    heartbeat.tick_record()  # the restarted server kept nothing; the next tick writes the key again

    # The worker reconnects on its own; /probes follows.
    status, body = wait_until(lambda: (r := probes(client))[0] == 200 and r, timeout=60) or probes(client)
    assert status == 200, body


def test_probes_goes_503_when_the_database_is_down_and_back_to_200(client, pointed_at_spare_redis, tmp_path):
    real_name = connection.settings_dict["NAME"]
    gone = str(tmp_path / "no-such-dir" / "db.sqlite3") if connection.vendor == "sqlite" else "cadence_no_such_db"
    connection.close()
    connection.settings_dict["NAME"] = gone
    try:
        status, body = probes(client)
    finally:
        connection.close()
        connection.settings_dict["NAME"] = real_name
    assert status == 503
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["broker"]["ok"] is True

    status, body = probes(client)
    assert status == 200, body


def test_probes_fails_when_the_tick_is_too_old(client, pointed_at_spare_redis, settings):
    heartbeat.tick_record(now=ops.timezone.now() - ops.timedelta(seconds=settings.PROBE_TICK_MAX_AGE + 5))

    status, body = probes(client)

    assert status == 503
    assert body["checks"]["tick"]["ok"] is False
    assert body["checks"]["worker"]["ok"] is True
