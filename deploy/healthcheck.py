"""The image's HEALTHCHECK: GET /healthz of the web process in this container (liveness, nothing more).

Run as `deploy/cadence healthcheck`. A script outside the `config` package, so it loads neither Django nor
Celery: a probe every 30 seconds costs a few milliseconds of CPU.
Django answers 400 to a Host header that is not in ALLOWED_HOSTS, so the request names the first
concrete host of ALLOWED_HOSTS, whatever the deployment is called. Exit 0 when /healthz answers 200.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping

TIMEOUT_SECONDS = 5.0


def host_header(allowed_hosts: str) -> str:
    """Return a Host that Django's ALLOWED_HOSTS (comma-separated, as in the environment) accepts."""
    for entry in allowed_hosts.split(","):
        host = entry.strip().lstrip(".")  # ".example.com" allows example.com itself too
        if host and host != "*":
            return host
    return "localhost"  # the settings' default list (or "*") accepts it


def healthz_url(environ: Mapping[str, str]) -> str:
    return f"http://127.0.0.1:{environ.get('PORT', '8000')}/healthz"


def main(environ: Mapping[str, str] = os.environ) -> int:
    request = urllib.request.Request(
        healthz_url(environ), headers={"Host": host_header(environ.get("ALLOWED_HOSTS", ""))}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthcheck: {healthz_url(environ)}: {exc}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
