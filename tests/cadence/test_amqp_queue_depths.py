"""With RabbitMQ as broker, /metrics and the ops figures still show how many tasks wait per queue."""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest
from kombu import Connection, Exchange, Queue

from cadence.ops import figures as ops

pytestmark = pytest.mark.worker

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture
def rabbitmq(settings):
    parts = urlsplit(AMQP_URL)
    try:
        socket.create_connection((parts.hostname, parts.port or 5672), 2).close()
    except OSError:
        pytest.skip(f"no RabbitMQ answers at {AMQP_URL}")
    names = [f"test-depth-{uuid.uuid4().hex[:8]}-{name}" for name in ("welcome", "bulk", "default")]
    settings.CELERY_BROKER_URL = AMQP_URL
    settings.CELERY_TASK_QUEUES = [Queue(name, Exchange(name), routing_key=name) for name in names]
    yield names
    with Connection(AMQP_URL) as connection:
        channel = connection.channel()
        for name in names:
            channel.queue_delete(name)


def test_queue_depths_are_read_from_rabbitmq_without_its_management_plugin(rabbitmq):
    welcome, bulk, default = rabbitmq
    with Connection(AMQP_URL) as connection:
        producer = connection.Producer()
        for queue in (
            Queue(welcome, Exchange(welcome), routing_key=welcome),
            Queue(bulk, Exchange(bulk), routing_key=bulk),
        ):
            queue(connection.channel()).declare()
        for _ in range(3):
            producer.publish({"n": 1}, exchange=welcome, routing_key=welcome)
        producer.publish({"n": 1}, exchange=bulk, routing_key=bulk)

    depths = ops.queue_depths()

    assert depths == {welcome: 3, bulk: 1, default: 0}  # `default` was never declared: 0, and not created


@pytest.mark.django_db
def test_metrics_expose_rabbitmq_queue_depths(rabbitmq):
    from prometheus_client import generate_latest

    from cadence.ops import metrics

    welcome = rabbitmq[0]
    with Connection(AMQP_URL) as connection:
        Queue(welcome, Exchange(welcome), routing_key=welcome)(connection.channel()).declare()
        connection.Producer().publish({"n": 1}, exchange=welcome, routing_key=welcome)

    text = generate_latest(metrics.registry()).decode()

    assert f'cadence_queue_depth{{queue="{welcome}"}} 1.0' in text
    assert 'cadence_scrape_errors{source="queues"} 0.0' in text
