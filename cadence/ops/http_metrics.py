"""HTTP request metrics (django-prometheus's middleware) for /metrics, beside the ops collector.

Each gunicorn worker counts its own requests. With PROMETHEUS_MULTIPROC_DIR set (an empty, writable
folder such as a tmpfs, cleared at start), prometheus-client's multiprocess mode adds them up across the
workers; gunicorn.conf.py marks a finished worker dead. Without it, /metrics shows the answering worker's.
https://prometheus.github.io/client_python/multiprocess/
"""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector


def http_exposition() -> bytes:
    """Return the exposition of the process's default registry (HTTP metrics), across workers when configured."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
