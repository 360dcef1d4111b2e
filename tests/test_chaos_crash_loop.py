"""The chaos run stops at once, with the log's tail, when its processes cannot start (a broken setting)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bench.chaos import CrashLoop, Processes

pytestmark = pytest.mark.worker


def test_workers_that_die_at_start_stop_the_run_with_the_reason(tmp_path: Path) -> None:
    env = dict(os.environ)
    # Retry waits longer than the visibility timeout: the settings refuse to load.
    env.update({"CELERY_VISIBILITY_TIMEOUT": "60", "SEND_RETRY_BACKOFF_MAX": "900"})
    processes = Processes(env, tmp_path, workers=2, log=tmp_path / "processes.log")
    processes.start()
    deadline = time.monotonic() + 120
    try:
        with pytest.raises(CrashLoop) as raised:
            while time.monotonic() < deadline:
                processes.supervise()
                time.sleep(0.2)
    finally:
        processes.stop()
    assert "SEND_RETRY_BACKOFF_MAX and SEND_RETRY_AFTER_MAX must stay below CELERY_VISIBILITY_TIMEOUT" in str(
        raised.value
    )
    assert processes.early_exits > Processes.EARLY_EXITS_ALLOWED


def test_a_process_that_lived_is_not_an_early_exit(tmp_path: Path) -> None:
    processes = Processes(dict(os.environ), tmp_path, workers=1, log=tmp_path / "processes.log")
    processes.start_worker(0)
    try:
        worker = processes.workers[0]
        assert worker is not None
        processes.started_at[worker.pid] -= Processes.EARLY_EXIT_SECONDS + 1  # as if it had run for a while
        worker.kill()
        worker.wait()
        assert processes.supervise() == 1
        assert processes.early_exits == 0
    finally:
        processes.stop()
