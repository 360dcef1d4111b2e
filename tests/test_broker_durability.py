"""With RabbitMQ, queued tasks survive a broker restart: durable queues and exchanges, persistent messages."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest
from amqp.exceptions import PreconditionFailed
from django.conf import settings
from kombu import Queue

from config.celery import app as celery_app
from tests.workers import purge_queues

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith("amqp"), reason="RabbitMQ only (CELERY_BROKER_URL=amqp://...)"
    ),
]
# The RabbitMQ node to restart (`rabbitmqctl -n NODE stop_app/start_app`): a broker of the test run's own.
RESTART_NODE = os.environ.get("BROKER_RESTART_NODE", "")


def queue_bulk_task() -> str:
    task_id = str(uuid.uuid4())
    celery_app.send_task("cadence.tasks.send_batch", ([task_id],), queue="bulk", task_id=task_id)
    return task_id


def waiting(queue: str) -> int:
    with celery_app.connection_for_write() as conn:
        return celery_app.amqp.queues[queue].bind(conn.default_channel).queue_declare(passive=True).message_count


@pytest.mark.parametrize("name", ["welcome", "bulk", "default"])
def test_every_queue_and_its_exchange_are_durable_on_the_broker(name):
    purge_queues(name)
    with celery_app.connection_for_write() as conn:
        # The broker refuses to declare an existing queue or exchange again with other properties.
        transient = Queue(name, celery_app.amqp.queues[name].exchange, routing_key=name, durable=False)
        with pytest.raises(PreconditionFailed):
            transient.bind(conn.channel()).queue_declare()
        exchange = celery_app.amqp.queues[name].exchange
        with pytest.raises(PreconditionFailed):
            exchange.__class__(name, type=exchange.type, durable=False).bind(conn.channel()).declare()


def test_a_queued_task_is_a_persistent_message_and_stays_until_acknowledged():
    purge_queues("bulk")
    task_id = queue_bulk_task()
    with celery_app.connection_for_write() as conn:
        channel = conn.channel()
        message = channel.basic_get("bulk", no_ack=False)
        assert message is not None and message.headers["id"] == task_id
        assert message.properties["delivery_mode"] == 2
        # A consumer that dies before acknowledging gives the message back to the queue.
        conn.close()
    assert waiting("bulk") == 1
    purge_queues("bulk")


@pytest.mark.skipif(not RESTART_NODE, reason="set BROKER_RESTART_NODE to a RabbitMQ node the tests may restart")
def test_a_queued_task_survives_a_broker_restart():
    purge_queues("bulk")
    queue_bulk_task()
    celery_app.pool.force_close_all()
    for command in ("stop_app", "start_app", "await_startup"):
        subprocess.run(["rabbitmqctl", "-n", RESTART_NODE, command], check=True, capture_output=True, timeout=120)
    deadline = time.monotonic() + 30
    while True:
        try:
            assert waiting("bulk") == 1
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    purge_queues("bulk")
