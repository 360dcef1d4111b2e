"""Beside `make run`, every entry point (manage.py, celery, runserver) finds the demo's secrets and Redis.

Only with DEBUG on (in the environment or in .env, which `make run` writes on its first start): a
production deployment takes its secrets from the environment or does not start (config/checks.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent


def read_demo_secrets(base_dir: Path = BASE_DIR) -> dict[str, str]:
    """With DEBUG on, set SECRET_KEY and ANYMAIL_WEBHOOK_SECRET from `base_dir`/var/ (made once) unless
    set, and REDIS_URL to the embedded Redis when none is set and only that one answers.

    Return the variables it set; nothing with DEBUG off.
    """
    environ.Env.read_env(base_dir / ".env", overwrite=False)
    if not environ.Env().bool("DEBUG", default=False):
        return {}
    from config.devredis import DEFAULT_URL, EMBEDDED_PORT, answers
    from config.launch import ensure_local_secrets

    missing = {name for name in ("SECRET_KEY", "ANYMAIL_WEBHOOK_SECRET") if not os.environ.get(name)}
    found = {name: value for name, value in ensure_local_secrets(base_dir / "var").items() if name in missing}
    if not os.environ.get("REDIS_URL"):
        embedded = f"redis://127.0.0.1:{EMBEDDED_PORT}/0"
        if not answers(DEFAULT_URL) and answers(embedded):
            os.environ["REDIS_URL"] = found["REDIS_URL"] = embedded
    return found
