"""The image's HEALTHCHECK (deploy/cadence healthcheck) passes against a live web whatever the deployment is
called: Django refuses a Host outside ALLOWED_HOSTS with 400, so the check names an allowed one."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent.parent
spec = importlib.util.spec_from_file_location("healthcheck", BASE_DIR / "deploy" / "healthcheck.py")
assert spec and spec.loader
healthcheck = importlib.util.module_from_spec(spec)
spec.loader.exec_module(healthcheck)


@pytest.mark.parametrize(
    ("allowed", "host"),
    [
        ("cadence.example.com", "cadence.example.com"),
        (" .example.org , cadence.example.com", "example.org"),
        ("*", "localhost"),
        ("*,mail.example.com", "mail.example.com"),
        ("", "localhost"),
    ],
)
def test_the_host_header_is_one_allowed_hosts_accepts(allowed, host):
    assert healthcheck.host_header(allowed) == host


def test_the_entry_point_passes_against_a_live_web_with_a_production_host_list(live_server, settings):
    settings.ALLOWED_HOSTS = ["cadence.example.com"]
    port = live_server.url.rsplit(":", 1)[1]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{live_server.url}/healthz", timeout=10)  # Host: 127.0.0.1
    assert refused.value.code == 400

    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PORT": port,
        "ALLOWED_HOSTS": "cadence.example.com",
    }
    result = subprocess.run(
        ["sh", "deploy/cadence", "healthcheck"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


def test_it_fails_when_nothing_answers():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert healthcheck.main({"PORT": str(port), "ALLOWED_HOSTS": "cadence.example.com"}) == 1
