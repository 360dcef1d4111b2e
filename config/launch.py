"""`make run`: prepare the embedded default and start web, worker, beat and Flower (honcho)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from config.devredis import DEFAULT_URL, ensure

BASE_DIR = Path(__file__).resolve().parent.parent


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, check=True)


def main() -> None:
    os.environ["REDIS_URL"] = ensure(os.environ.get("REDIS_URL", DEFAULT_URL))
    os.environ.setdefault("DEBUG", "true")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    manage("migrate", "--no-input", "-v", "0")
    if shutil.which("msgfmt"):
        manage("compilemessages", "--ignore", ".venv", "-v", "0")
    manage("demo")
    print(f"Redis: {os.environ['REDIS_URL']}. Stop everything with Ctrl+C.", flush=True)
    os.execvp("honcho", ["honcho", "start", "-f", str(BASE_DIR / "Procfile")])


if __name__ == "__main__":
    main()
