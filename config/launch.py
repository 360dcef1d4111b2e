"""`make run`: local secrets and the embedded defaults, then web, workers, beat and Flower (honcho)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import environ

from config.devredis import DEFAULT_URL, ensure

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, check=True)


def metrics_token(var_dir: Path = VAR_DIR) -> str:
    """Return the METRICS_TOKEN of this machine's embedded run: the environment's, else one kept in var/."""
    if os.environ.get("METRICS_TOKEN"):
        return os.environ["METRICS_TOKEN"]
    return local_secret(var_dir / "metrics-token", lambda: secrets.token_urlsafe(32))


def local_secret(path: Path, make: Callable[[], str]) -> str:
    """Return the secret kept in `path`, creating it (readable by its owner only) the first time."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(value + "\n")
    return value


def ensure_local_secrets(var_dir: Path = VAR_DIR) -> dict[str, str]:
    """Set SECRET_KEY and ANYMAIL_WEBHOOK_SECRET from var/ (generated once) unless already set."""
    made = {
        "SECRET_KEY": lambda: local_secret(var_dir / "secret_key", lambda: secrets.token_urlsafe(64)),
        "ANYMAIL_WEBHOOK_SECRET": lambda: local_secret(
            var_dir / "webhook_secret", lambda: f"esp:{secrets.token_urlsafe(24)}"
        ),
    }
    for name, make in made.items():
        if not os.environ.get(name):
            os.environ[name] = make()
    return {name: os.environ[name] for name in made}


def write_dotenv(path: Path = BASE_DIR / ".env") -> bool:
    """Write a .env with DEBUG=true unless one exists, so commands typed beside the demo (manage.py,
    celery) run as it does and read its secrets from var/ (config/devsecrets.py). Return whether it wrote."""
    if path.exists():
        return False
    path.write_text(
        "# Written by `make run` on its first start: a development checkout. With DEBUG on, manage.py and\n"
        "# celery read the demo's secrets from var/. Never deploy with this file: production sets DEBUG=false.\n"
        "DEBUG=true\n"
    )
    return True


def main() -> None:
    os.environ["REDIS_URL"] = ensure(os.environ.get("REDIS_URL", DEFAULT_URL))
    os.environ.setdefault("DEBUG", "true")
    for folder in (VAR_DIR, BASE_DIR / "staticfiles"):  # settings make none (a read-only image)
        folder.mkdir(exist_ok=True)
    if write_dotenv():
        print("Wrote .env (DEBUG=true): manage.py and celery beside the demo read its secrets from var/.", flush=True)
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)  # a key set there wins over var/
    webhook_secret = ensure_local_secrets()["ANYMAIL_WEBHOOK_SECRET"]
    os.environ["METRICS_TOKEN"] = metrics_token()
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    manage("migrate", "--no-input", "-v", "0")
    if shutil.which("msgfmt"):
        manage("compilemessages", "--ignore", ".venv", "-v", "0")
    manage("demo")
    site = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
    print(f"  Metrics:             curl -H 'Authorization: Bearer {os.environ['METRICS_TOKEN']}' {site}/metrics")
    print(
        f"ESP webhook secret (kept in var/webhook_secret): {webhook_secret}\n"
        f"  e.g. http://{webhook_secret}@127.0.0.1:8000/anymail/postmark/tracking/",
        flush=True,
    )
    print(f"Redis: {os.environ['REDIS_URL']}. Stop everything with Ctrl+C.", flush=True)
    os.execvp("honcho", ["honcho", "start", "-f", str(BASE_DIR / "Procfile")])


if __name__ == "__main__":
    main()
