"""Render a message: three templates (subject, text, HTML) in the contact's language, CSS inlined."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import css_inline
from django.template import Context
from django.template.loader import get_template, render_to_string
from django.utils import translation

from preferences.brand import current_brand


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
        context = {"brand": current_brand(), **context}
        subject = " ".join(_render_plain(f"{base}_subject.txt", context).split())
        text = _render_plain(f"{base}.txt", context)
        html = render_to_string(f"{base}.html", context)
    return RenderedMessage(subject=subject, text=text, html=_inliner().inline(html))


def _render_plain(template_name: str, context: dict[str, Any]) -> str:
    """Return a plain-text template rendered without HTML escaping ("O'Brien", not "O&#x27;Brien")."""
    return get_template(template_name).template.render(Context(context, autoescape=False))  # type: ignore[attr-defined]
