"""Start real Celery worker processes against the real broker, for tests where queues matter."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from config.celery import app as celery_app
from tests.conftest import subprocess_env

BASE_DIR = Path(__file__).resolve().parent.parent


def purge_queues(*queues: str) -> None:
    """Drop messages left on the broker by earlier tests (declaring the queues first: AMQP refuses to
    purge a queue that does not exist yet)."""
    with celery_app.connection_for_write() as conn:
        for name in queues:
            queue = celery_app.amqp.queues[name].bind(conn.default_channel)
            queue.declare()
            queue.purge()


@contextmanager
def running_worker(
    *, queues: str, name: str = "test", concurrency: int = 1, loglevel: str = "WARNING", **env: str
) -> Iterator[subprocess.Popen]:
    """Run `celery worker` (prefork) consuming `queues` until the block ends; wait until it answers a ping.

    The worker runs in its own process group, so `kill()` takes its pool children too. Its output goes
    to a temporary file (a pipe nobody reads would block a chatty worker) and is shown if it fails to start.
    """
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            [
                *[sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-n", f"{name}@%h"],
                *["--concurrency", str(concurrency), "--pool", "prefork", "--without-gossip", "--without-mingle"],
                *["--loglevel", loglevel],
            ],
            cwd=BASE_DIR,
            env=subprocess_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not celery_app.control.ping(destination=[f"{name}@{socket.gethostname()}"], timeout=0.5):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"worker {name} did not start:\n{log.read()[-4000:]}")
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def kill(process: subprocess.Popen) -> None:
    """Kill the worker and its pool children at once, as the kernel's OOM killer would."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Return True as soon as `predicate()` holds, False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
