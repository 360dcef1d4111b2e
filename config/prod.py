"""`make prod`: the production process set on this machine, without containers.

gunicorn, the welcome, bulk and events workers and one beat (Procfile.prod, the same deploy/cadence entry points
as the image), with DEBUG off, secrets only from the environment, PostgreSQL, RabbitMQ and an SMTP relay.
With PROD_USER set and run as root, it migrates and collects the static files, then drops to that user,
to whom a root-owned code folder is read-only (the interpreter and the virtualenv must be readable by
it). Nothing is written under the code folder in any case: static files go to STATIC_ROOT outside it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

DEFAULTS = {
    "DEBUG": "false",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/cadence",
    "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
    # The cache in a Redis db of its own (the broker is RabbitMQ).
    "REDIS_URL": "redis://127.0.0.1:6379/2",
    "EMAIL_URL": "smtp://127.0.0.1:1025",
    "SITE_URL": "http://127.0.0.1:8000",
    "PORT": "8000",
    "LOG_JSON": "true",
    "PYTHONDONTWRITEBYTECODE": "1",
}
REQUIRED = ("SECRET_KEY", "ANYMAIL_WEBHOOK_SECRET")


def prod_environment(environ: dict[str, str]) -> dict[str, str]:
    """Return the environment of the process set: `environ` over the defaults. Exit when a secret is missing."""
    missing = [name for name in REQUIRED if not environ.get(name)]
    if missing:
        raise SystemExit(
            f"make prod takes its secrets from the environment: set {', '.join(missing)} "
            "(docs/operations.md, 'make prod')."
        )
    env = {**DEFAULTS, **environ}
    env["GUNICORN_BIND"] = env.get("GUNICORN_BIND") or f"127.0.0.1:{env['PORT']}"
    env.setdefault("STATIC_ROOT", str(Path(tempfile.gettempdir()) / "cadence-prod-static"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def drop_privileges(user: str, env: dict[str, str]) -> None:
    """Become `user` (from root): its uid, gid and no other groups; HOME where it may not write anything."""
    account = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    env["HOME"] = tempfile.gettempdir()
    env["USER"] = user


def main() -> None:
    env = prod_environment(dict(os.environ))
    os.environ.update(env)
    run = lambda *args: subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)  # noqa: E731
    run("migrate", "--no-input", "-v", "0")
    run("collectstatic", "--no-input", "-v", "0")
    user = env.get("PROD_USER", "")
    if user and os.geteuid() == 0:
        static = Path(env["STATIC_ROOT"])
        for path in (static, *static.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        drop_privileges(user, env)
        print(f"make prod: running as {user}", flush=True)
    honcho = shutil.which("honcho", path=env["PATH"]) or "honcho"
    os.chdir(BASE_DIR)
    os.execvpe(honcho, [honcho, "start", "-f", str(BASE_DIR / "Procfile.prod"), "-d", str(BASE_DIR)], env)


if __name__ == "__main__":
    main()
