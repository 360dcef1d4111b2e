"""config.settings plus the SMTP relay from EMAIL_URL, for a checkout whose settings do not read it."""

from __future__ import annotations

import os

import environ

from config.settings import *  # noqa: F403

if "EMAIL_URL" in os.environ:
    globals().update(environ.Env.email_url_config(os.environ["EMAIL_URL"]))
