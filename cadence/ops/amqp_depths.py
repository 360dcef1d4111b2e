"""Queue depths on RabbitMQ: a passive declare per queue answers with its ready message count.

No management plugin needed: `queue.declare(passive=True)` is plain AMQP 0-9-1 and never creates a queue.
Messages a worker holds unacknowledged are not counted (RabbitMQ reports only ready ones here).
"""

from __future__ import annotations

from kombu import Connection
from kombu.exceptions import ChannelError

CONNECT_TIMEOUT = 2.0


def amqp_queue_depths(url: str, names: list[str]) -> dict[str, int]:
    """Return {queue: messages ready} for `names`; a queue that does not exist yet counts 0."""
    depths: dict[str, int] = {}
    with Connection(url, connect_timeout=CONNECT_TIMEOUT, transport_options={"max_retries": 0}) as connection:
        connection.ensure_connection(max_retries=1)
        channel = connection.channel()
        try:
            for name in names:
                try:
                    depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
                except ChannelError:  # 404 NOT_FOUND closes the channel
                    depths[name] = 0
                    channel = connection.channel()
        finally:
            channel.close()
    return depths
