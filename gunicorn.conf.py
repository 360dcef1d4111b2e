"""gunicorn for the web process: `gunicorn -c gunicorn.conf.py config.wsgi` (make prod, the image, compose).

Every value comes from the environment (docs/configuration.md, "gunicorn"). Nothing is written to disk:
the heartbeat files live in /dev/shm and the control socket is off, so a read-only root filesystem works.
https://docs.gunicorn.org/en/stable/settings.html
"""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(
    os.environ.get("GUNICORN_WORKERS") or os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1
)
# Threaded workers (gthread): a request mostly waits for PostgreSQL's commit (an ESP webhook post is one
# INSERT), and threads let those waits overlap and share the disk's flushes; they also keep the ESP's
# connection open between posts. With sync workers (threads 1) a worker waits for each commit alone and
# every post opens a new TCP connection: 236 posts/s against 715 with 8 threads (bench/RESULTS.md).
# Each thread holds its own database connection (workers x threads in all).
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# A worker is replaced after this many requests (0: never), spread by the jitter.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))
# Django is loaded once, in the master, and each worker is a fork of it: a replaced worker costs a fork,
# not the second of CPU that loading Django and the URLs takes (at 2,000 posts/s and 4 workers, one
# worker every second). Code is then reloaded by restarting the master, never by HUP alone.
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").lower() in ("1", "true", "yes")
# The proxies whose X-Forwarded-* headers are believed: the load balancer's addresses ("*" behind a
# private network only). Django's own view of the client IP is NUM_PROXIES.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
control_socket_disable = True
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Never a whole link token: TokenSafeLogger shortens /confirm/<t>/, /preferences/<t>/, /unsubscribe/<t>/,
# /link/... and token= queries in every atom. No user agent's cookies or Authorization header.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'
logger_class = "config.gunicorn_logging.TokenSafeLogger"


def when_ready(server: object) -> None:
    """Close whatever database connection loading the app opened: forks must never share one."""
    if preload_app:
        from django.db import connections

        connections.close_all()


def child_exit(server: object, worker: object) -> None:
    """Drop a finished worker's live gauges from the multiprocess HTTP metrics (cadence/ops/http_metrics.py)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
