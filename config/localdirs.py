"""The folders of a local run (`make run`, `make test`), made by the code that writes into them.

Settings make no folder at import: a container's root filesystem may be read-only, and production
keeps its state in PostgreSQL, the broker and the imports storage.
"""

from __future__ import annotations

import contextlib

from django.conf import settings


def ensure_local_dirs() -> None:
    """Create var/ (SQLite, outbox, secrets) and STATIC_ROOT when missing; a read-only tree is left alone."""
    for folder in (settings.VAR_DIR, settings.STATIC_ROOT):
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
