"""`make run`: prepare the embedded default and start web, worker, beat and Flower (honcho)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from config.devredis import DEFAULT_URL, ensure

BASE_DIR = Path(__file__).resolve().parent.parent


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, check=True)


def metrics_token(var_dir: Path = BASE_DIR / "var") -> str:
    """Return the METRICS_TOKEN of this machine's embedded run: the environment's, else one kept in var/."""
    if os.environ.get("METRICS_TOKEN"):
        return os.environ["METRICS_TOKEN"]
    path = var_dir / "metrics-token"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def main() -> None:
    os.environ["REDIS_URL"] = ensure(os.environ.get("REDIS_URL", DEFAULT_URL))
    os.environ.setdefault("DEBUG", "true")
    os.environ["METRICS_TOKEN"] = metrics_token()
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    manage("migrate", "--no-input", "-v", "0")
    if shutil.which("msgfmt"):
        manage("compilemessages", "--ignore", ".venv", "-v", "0")
    manage("demo")
    site = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
    print(f"  Metrics:             curl -H 'Authorization: Bearer {os.environ['METRICS_TOKEN']}' {site}/metrics")
    print(f"Redis: {os.environ['REDIS_URL']}. Stop everything with Ctrl+C.", flush=True)
    os.execvp("honcho", ["honcho", "start", "-f", str(BASE_DIR / "Procfile")])


if __name__ == "__main__":
    main()
