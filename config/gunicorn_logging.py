"""gunicorn's logger, with link tokens shortened in every atom of the access log (config/accesslog.py)."""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from config.accesslog import ShortenTokensFilter, shorten_tokens


class TokenSafeLogger(Logger):
    """Format access log lines whose request line, path, query and referer hold no whole token.

    The error log too: gunicorn names the request's path in "Error handling request /confirm/<token>/".
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.addFilter(ShortenTokensFilter())

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            if isinstance(value, str):
                atoms[key] = shorten_tokens(value)
        return atoms
