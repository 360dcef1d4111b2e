"""Render a message: three templates (subject, text, HTML) in the contact's language, CSS inlined.

A batch renders once per group: everyone whose mail is the same apart from their own values (name,
links) shares one rendering made with placeholders, and each person's values are merged in
afterwards: HTML-escaped in the HTML part, as they are in the subject and text. Templates are
compiled once per process (Django's cached template loader, the default outside DEBUG reloads), and
a group's rendering is kept per process for the next batches (`render_group_cached`): its key is
the whole shared context, so other content is another key.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import css_inline
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template import Context
from django.template.loader import get_template, render_to_string
from django.utils import translation

from preferences.brand import current_brand

# The values that differ per person inside a group. A template may test them for emptiness
# ({% if first_name %}), so an empty value is not a merge field: it stays in the group's context.
MERGE_FIELDS = ("first_name", "preferences_url", "unsubscribe_url", "confirm_url", "dossier_url")

# Letters and digits only, so HTML escaping, URL quoting and CSS inlining leave a placeholder as it is;
# the random part keeps text written by marketers or subscribers from ever matching one.
_NONCE = secrets.token_hex(8)
PLACEHOLDER_PREFIX = f"mrg{_NONCE}"  # a placeholder is f"{PLACEHOLDER_PREFIX}x{name}x"
_PLACEHOLDER = re.compile(rf"{PLACEHOLDER_PREFIX}x([a-z_]+)x")
# Control characters and Unicode line/paragraph separators (names are refused with them at every door;
# this is the second line of defence for rows stored before).
_HEADER_BREAKERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def placeholder(name: str) -> str:
    """Return the placeholder that stands for the merge field `name` in a group's rendering."""
    return f"{PLACEHOLDER_PREFIX}x{name}x"


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class RenderedGroup:
    """One rendering shared by a group, with placeholders where each person's values go."""

    subject: str
    text: str
    html: str

    def merge(self, values: Mapping[str, str]) -> RenderedMessage:
        """Return the message for one person: `values` raw in subject and text, escaped in HTML."""
        escaped = {name: html.escape(value) for name, value in values.items()}  # what django's escape() does
        return RenderedMessage(
            subject=_substitute(self.subject, values),
            text=_substitute(self.text, values),
            html=_substitute(self.html, escaped),
        )

    def for_esp(self, field: str) -> RenderedMessage:
        """Return the group with the ESP's own merge fields in place of ours.

        `field` is the ESP's placeholder format ("%recipient.{name}%"); the HTML part refers to the
        escaped copy of each value, `<name>_html` (see `esp_merge_values`).
        """
        return RenderedMessage(
            subject=_PLACEHOLDER.sub(lambda m: field.format(name=m.group(1)), self.subject),
            text=_PLACEHOLDER.sub(lambda m: field.format(name=m.group(1)), self.text),
            html=_PLACEHOLDER.sub(lambda m: field.format(name=f"{m.group(1)}_html"), self.html),
        )


def esp_merge_values(values: Mapping[str, str], key: str = "{name}") -> dict[str, str]:
    """Return one person's merge_data for an ESP: each value raw, and escaped as `<name>_html`."""
    data: dict[str, str] = {}
    for name, value in values.items():
        data[key.format(name=name)] = value
        data[key.format(name=f"{name}_html")] = html.escape(value)
    return data


def _substitute(content: str, values: Mapping[str, str]) -> str:
    # One pass: a value that happens to contain a placeholder is not expanded again.
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), content)


def split_context(context: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the group's context (placeholders for the person's values) and the person's values."""
    shared = dict(context)
    values: dict[str, str] = {}
    for name in MERGE_FIELDS:
        value = context.get(name)
        if value:
            shared[name] = placeholder(name)
            # Merged into the subject (and by an ESP into its subject): no line break may reach a header.
            values[name] = _HEADER_BREAKERS.sub(" ", str(value))
    return shared, values


_SCALARS = (str, int, float, bool, type(None))


def group_key(
    name: str, locale: str, shared: Mapping[str, Any], memo: dict[int, tuple[Any, str]] | None = None
) -> Hashable:
    """Return what makes two renderings equal: template, language and the shared context.

    Plain values and lists of strings go in as they are (with their type: True is not 1); anything
    else as JSON. `memo` keeps that JSON by object for one batch, where many mails share one list (a
    digest): pass the same dict for the whole batch (it holds on to the objects, so no id is reused).
    """
    parts: list[Any] = [name, locale]
    for field in sorted(shared):
        value = shared[field]
        if isinstance(value, _SCALARS):
            parts += (field, type(value), value)
        elif type(value) is list and all(type(item) is str for item in value):
            parts += (field, list, tuple(value))
        else:
            known = memo.get(id(value)) if memo is not None else None
            if known is None:
                known = (value, json.dumps(value, sort_keys=True, default=str))
                if memo is not None:
                    memo[id(value)] = known
            parts += (field, object, known[1])
    return tuple(parts)


def render_group(name: str, shared: Mapping[str, Any], locale: str) -> RenderedGroup:
    """Render message `name` once for a group whose context is `shared` (from split_context)."""
    rendered = render_message(name, dict(shared), locale)
    return RenderedGroup(subject=rendered.subject, text=rendered.text, html=rendered.html)


# Renderings kept per process, by group key. The brand and the templates are the same for the whole
# process (settings, files read once); a change of settings (tests) empties it.
RENDER_CACHE_SIZE = 1024
_render_cache: OrderedDict[Hashable, RenderedGroup] = OrderedDict()
_render_cache_lock = threading.Lock()


def render_group_cached(name: str, shared: Mapping[str, Any], locale: str, key: Hashable) -> RenderedGroup:
    """Return `render_group(name, shared, locale)`, rendered once per process for each `key`
    (`group_key(name, locale, shared)`); the least recently used of RENDER_CACHE_SIZE renderings go.
    With DEBUG (templates reloaded when edited) nothing is kept."""
    if settings.DEBUG:
        return render_group(name, shared, locale)
    with _render_cache_lock:
        rendered = _render_cache.get(key)
        if rendered is not None:
            _render_cache.move_to_end(key)
            return rendered
    rendered = render_group(name, shared, locale)
    with _render_cache_lock:
        _render_cache[key] = rendered
        while len(_render_cache) > RENDER_CACHE_SIZE:
            _render_cache.popitem(last=False)
    return rendered


@receiver(setting_changed)
def _render_cache_clear(**kwargs: Any) -> None:
    with _render_cache_lock:
        _render_cache.clear()


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


EMAIL_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "messaging" / "email"


def message_names(prefix: str = "") -> list[str]:
    """Return the messages that exist (all three templates), sorted; only those starting with `prefix`."""
    names = []
    for subject in EMAIL_TEMPLATE_DIR.glob(f"{prefix}*_subject.txt"):
        name = subject.name.removesuffix("_subject.txt")
        if not name.startswith("_") and all((EMAIL_TEMPLATE_DIR / f"{name}{s}").exists() for s in (".txt", ".html")):
            names.append(name)
    return sorted(names)
