"""Start real Celery worker processes for the cadence tests, in their own process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from config.celery import app as celery_app
from tests.conftest import subprocess_env

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def purge(*queues: str) -> None:
    """Drop messages left on the broker by earlier tests."""
    with celery_app.connection_for_write() as conn:
        for queue in queues:
            conn.default_channel.queue_purge(queue)


@contextmanager
def worker(name: str, *, queues: str = "bulk,welcome", **env: str) -> Iterator[subprocess.Popen]:
    """Run one `celery worker` (prefork, one child) until the block ends; wait until it answers a ping."""
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
            "1",
            "--pool",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=BASE_DIR,
        env=subprocess_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so a SIGKILL can take the pool child too
    )
    try:
        deadline = time.monotonic() + 60
        while not celery_app.control.ping(destination=[f"{name}@{socket.gethostname()}"], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} did not start")
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


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
