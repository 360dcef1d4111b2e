"""Start real Celery worker processes against the real broker, for tests where queues matter."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from config.celery import app as celery_app
from tests.conftest import subprocess_env

BASE_DIR = Path(__file__).resolve().parent.parent


def purge_queues(*queues: str) -> None:
    """Drop messages left on the broker by earlier tests."""
    with celery_app.connection_for_write() as conn:
        for queue in queues:
            conn.default_channel.queue_purge(queue)


@contextmanager
def running_worker(*, queues: str, name: str = "test", concurrency: int = 1, **env: str) -> Iterator[subprocess.Popen]:
    """Run `celery worker` consuming `queues` until the block ends; wait until it answers a ping."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            queues,
            "-n",
            f"{name}@%h",
            "--concurrency",
            str(concurrency),
            "--pool",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        cwd=BASE_DIR,
        env=subprocess_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{process.stdout.read() if process.stdout else ''}")
            replies = celery_app.control.ping(destination=[f"{name}@{_hostname()}"], timeout=0.5)
            if replies:
                break
        else:
            raise RuntimeError("worker did not answer a ping within 60 s")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _hostname() -> str:
    import socket

    return socket.gethostname()
