"""Beside the running demo, the README's commands run as written: with DEBUG on they read its secrets
from var/; with DEBUG off they never do (production takes its secrets from the environment or stops)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from config.devsecrets import read_demo_secrets
from config.launch import write_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def test_with_debug_on_the_demo_secrets_are_read_from_var(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    for name in ("SECRET_KEY", "ANYMAIL_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret_key").write_text("the-demo-key\n")

    found = read_demo_secrets(tmp_path)

    assert os.environ["SECRET_KEY"] == found["SECRET_KEY"] == "the-demo-key"
    assert os.environ["ANYMAIL_WEBHOOK_SECRET"] == (tmp_path / "var" / "webhook_secret").read_text().strip()


def test_with_debug_off_nothing_is_read_from_var(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBUG", "false")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret_key").write_text("the-demo-key\n")

    assert read_demo_secrets(tmp_path) == {}
    assert "SECRET_KEY" not in os.environ
    assert not (tmp_path / "var" / "webhook_secret").exists()


def test_a_variable_already_set_wins_over_var(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    monkeypatch.setenv("ANYMAIL_WEBHOOK_SECRET", "a:b")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert read_demo_secrets(tmp_path) == {}
    assert os.environ["SECRET_KEY"] == "from-the-environment"


def test_make_run_writes_a_debug_dotenv_once_and_never_over_one_that_exists(tmp_path):
    path = tmp_path / ".env"
    assert write_dotenv(path) is True
    assert "DEBUG=true" in path.read_text().splitlines()
    path.write_text("DEBUG=false\n")
    assert write_dotenv(path) is False
    assert path.read_text() == "DEBUG=false\n"


def test_manage_py_beside_the_demo_signs_with_the_demo_key():
    env = {name: value for name, value in os.environ.items() if name not in ("SECRET_KEY", "ANYMAIL_WEBHOOK_SECRET")}
    env["DEBUG"] = "true"
    script = "from django.conf import settings; print(settings.SECRET_KEY); print(settings.ANYMAIL['WEBHOOK_SECRET'])"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    key, webhook_secret = result.stdout.splitlines()[-2:]
    assert key == (BASE_DIR / "var" / "secret_key").read_text().strip()
    assert webhook_secret == (BASE_DIR / "var" / "webhook_secret").read_text().strip()
