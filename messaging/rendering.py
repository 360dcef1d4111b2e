"""Render a message: three templates (subject, text, HTML) in the contact's language, CSS inlined."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import css_inline
from django.template import Context
from django.template.loader import get_template, render_to_string
from django.utils import translation


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=1)
def _inliner() -> css_inline.CSSInliner:
    return css_inline.CSSInliner(load_remote_stylesheets=False)


def render_message(name: str, context: dict[str, Any], locale: str) -> RenderedMessage:
    """Return message `name` rendered from messaging/email/<name>{_subject.txt,.txt,.html}."""
    base = f"messaging/email/{name}"
    with translation.override(locale):
        subject = " ".join(_render_plain(f"{base}_subject.txt", context).split())
        text = _render_plain(f"{base}.txt", context)
        html = render_to_string(f"{base}.html", context)
    return RenderedMessage(subject=subject, text=text, html=_inliner().inline(html))


def _render_plain(template_name: str, context: dict[str, Any]) -> str:
    """Return a plain-text template rendered without HTML escaping ("O'Brien", not "O&#x27;Brien")."""
    return get_template(template_name).template.render(Context(context, autoescape=False))  # type: ignore[attr-defined]


EMAIL_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "messaging" / "email"


def message_names(prefix: str = "") -> list[str]:
    """Return the messages that exist (all three templates), sorted; only those starting with `prefix`."""
    names = []
    for subject in EMAIL_TEMPLATE_DIR.glob(f"{prefix}*_subject.txt"):
        name = subject.name.removesuffix("_subject.txt")
        if not name.startswith("_") and all((EMAIL_TEMPLATE_DIR / f"{name}{s}").exists() for s in (".txt", ".html")):
            names.append(name)
    return sorted(names)
