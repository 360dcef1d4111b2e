"""`make prod`'s process set (gunicorn, the welcome, bulk and events workers, one beat; DEBUG off, secrets from the
environment, PostgreSQL, RabbitMQ, an SMTP relay) carries a subscriber through its real HTTP front door:
signup -> the confirmation mail at the relay -> confirm -> the welcome at the relay -> one-click unsubscribe.
"""

from __future__ import annotations

import email
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from aiosmtpd.controller import Controller
from django.db import connection

from preferences.models import Contact
from tests.conftest import subprocess_env
from tests.factories import TopicFactory

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(__file__).resolve().parent.parent
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


class Relay:
    """An SMTP relay that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.arrived:
            self.messages.append(email.message_from_bytes(envelope.content))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, subject_part: str, timeout: float = 90) -> Message:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                found = [m for m in self.messages if subject_part.lower() in str(m["Subject"]).lower()]
                if found:
                    return found[-1]
                if not self.arrived.wait(max(0.0, deadline - time.monotonic())):
                    raise AssertionError(f"no mail with {subject_part!r}; got {[m['Subject'] for m in self.messages]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or 5672), 2).close()
        return True
    except OSError:
        return False


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


def code_folder_files() -> set[str]:
    skip = {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", "var"}
    return {
        str(path.relative_to(BASE_DIR))
        for path in BASE_DIR.rglob("*")
        if not skip & set(path.relative_to(BASE_DIR).parts)
    }


@pytest.fixture
def relay():
    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


def test_make_prod_carries_a_subscriber_from_signup_to_one_click_unsubscribe_through_gunicorn(relay, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("make prod runs on PostgreSQL (the start-up checks refuse SQLite with DEBUG off)")
    if not answers(AMQP_URL):
        pytest.skip(f"no RabbitMQ answers at {AMQP_URL}")
    TopicFactory(slug="saving", name_en="Saving", name_nl="Sparen")
    handler, smtp_port = relay
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    env = subprocess_env(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ANYMAIL_WEBHOOK_SECRET=f"esp:{secrets.token_urlsafe(24)}",
        CELERY_BROKER_URL=AMQP_URL,
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        EMAIL_URL=f"smtp://127.0.0.1:{smtp_port}",
        SITE_URL=site,
        PORT=str(port),
        GUNICORN_WORKERS="2",
        STATIC_ROOT=str(tmp_path / "static"),
        WELCOME_CONCURRENCY="1",
        BULK_CONCURRENCY="1",
    )
    for name in ("EMAIL_BACKEND", "CELERY_TASK_ALWAYS_EAGER"):
        env.pop(name, None)
    before = code_folder_files()
    log = (tmp_path / "prod.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "config.prod"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        web = requests.Session()
        deadline = time.monotonic() + 120
        while True:
            try:
                if web.get(f"{site}/subscribe/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise AssertionError(f"make prod did not serve:\n{log.read()[-4000:]}")
            time.sleep(0.5)
        page = web.get(f"{site}/subscribe/", timeout=10)
        assert "Server" not in page.headers or "WSGIServer" not in page.headers["Server"], "not gunicorn"
        static = re.search(r'/static/[^"]+\.[0-9a-f]{12}\.css', page.text)
        assert static, "DEBUG off serves hashed static names"
        assert web.get(f"{site}{static.group(0)}", timeout=10).status_code == 200

        signup = web.post(
            f"{site}/api/v1/subscribe/",
            json={"email": "prod@example.com", "first_name": "Pia", "locale": "en", "topics": ["saving"]},
            timeout=10,
        )
        assert signup.status_code == 202, signup.text
        confirmation = handler.wait_for("confirm")
        confirm_url = re.search(rf"{re.escape(site)}/confirm/[^\s]+", text_of(confirmation)).group(0)

        form = web.get(confirm_url, timeout=10)
        assert form.status_code == 200
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        confirmed = web.post(
            confirm_url, data={"csrfmiddlewaretoken": csrf}, headers={"Referer": confirm_url}, timeout=10
        )
        assert confirmed.status_code == 200, confirmed.text[:2000]

        welcome = handler.wait_for("welcome")
        assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsubscribe_url = re.sub(r"\s+", "", str(welcome["List-Unsubscribe"])).strip("<>")
        assert unsubscribe_url.startswith(f"{site}/unsubscribe/")
        one_click = requests.post(
            unsubscribe_url,
            data="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        assert one_click.status_code == 200
        assert Contact.objects.get(email="prod@example.com").status == Contact.Status.UNSUBSCRIBED
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    log.seek(0)
    output = log.read()
    assert "gunicorn" in output.lower() and "beat" in output.lower()
    assert "prod@example.com" not in output, "an address in the logs"
    token = confirm_url.rstrip("/").rsplit("/", 1)[1]
    assert token not in output and f"/confirm/{token[:6]}…" in output, "the access log holds a whole token"
    assert code_folder_files() == before, "make prod wrote into the code folder"
