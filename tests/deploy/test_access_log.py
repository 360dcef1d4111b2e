"""No access log line holds a whole link token: gunicorn's (gunicorn.conf.py) nor runserver's."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from config.accesslog import shorten_tokens
from tests.conftest import subprocess_env

BASE_DIR = Path(__file__).resolve().parent.parent.parent
TOKEN = "AbCdEfGhIjKlMnOpQrStUv.1b2c3d.0123456789abcdefghijKLMNOP"
PATHS = [
    f"/confirm/{TOKEN}/",
    f"/preferences/{TOKEN}/",
    f"/unsubscribe/{TOKEN}/",
    f"/unsubscribe/{TOKEN}",
    f"/link/{TOKEN}/",
    f"/subscribe/?token={TOKEN}&next=1",
]


@pytest.mark.parametrize("path", PATHS)
def test_a_token_is_cut_to_its_first_six_characters(path):
    shortened = shorten_tokens(f'127.0.0.1 "GET {path} HTTP/1.1" 200 "https://x.example{path}"')

    assert TOKEN not in shortened and TOKEN[:7] not in shortened
    assert f"{TOKEN[:6]}…" in shortened


def test_other_paths_stay_as_they_are():
    line = '"GET /admin/preferences/contact/?q=anna HTTP/1.1" 200'

    assert shorten_tokens(line) == line


def test_runservers_request_log_shortens_tokens(caplog):
    """runserver logs each request on `django.server`; the filter the settings give it shortens the line."""
    from django.core.servers.basehttp import WSGIRequestHandler

    handler = WSGIRequestHandler.__new__(WSGIRequestHandler)
    handler.request = None
    handler.client_address = ("127.0.0.1", 0)
    handler.requestline = f"GET /confirm/{TOKEN}/ HTTP/1.1"
    logger = logging.getLogger("django.server")
    logger.addHandler(caplog.handler)  # django.server does not propagate
    try:
        handler.log_message('"%s" %s %s', handler.requestline, "200", "512")
    finally:
        logger.removeHandler(caplog.handler)

    assert caplog.records, "runserver logged nothing"
    message = caplog.records[-1].getMessage()
    assert TOKEN not in message and f"/confirm/{TOKEN[:6]}…/" in message


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_gunicorns_access_and_error_logs_hold_no_whole_token(tmp_path):
    port = _free_port()
    env = {
        **subprocess_env(),
        "DEBUG": "true",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "x" * 60),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
    }
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "config.wsgi"],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        for path in PATHS:
            with contextlib.suppress(urllib.error.HTTPError):  # a refused token is still logged
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10)
        time.sleep(0.5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    text = log.read_text()
    request_lines = [
        line for line in text.splitlines() if re.search(r'"GET /(confirm|preferences|unsubscribe|link|subscribe)', line)
    ]
    assert len(request_lines) == len(PATHS), text[-3000:]
    assert TOKEN not in text
    assert all(f"{TOKEN[:6]}…" in line for line in request_lines)
