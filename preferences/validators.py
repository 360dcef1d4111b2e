"""Checks on what people type, shared by every door (signup form and API, CRM API, imports, admin)."""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Control and format characters (CR, LF, tab, NUL, zero-width and bidi overrides) and the Unicode line
# and paragraph separators: none belongs in a name, and CR/LF would end a mail header.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def has_control_characters(value: str) -> bool:
    """Return whether `value` holds a control, format or line-separator character (an ordinary space is fine)."""
    return any(unicodedata.category(char) in REFUSED_CATEGORIES for char in value)


def refuse_control_characters(value: str) -> None:
    """Raise ValidationError when `value` holds a control character (a line break, a tab, an invisible mark)."""
    if isinstance(value, str) and has_control_characters(value):
        raise ValidationError(
            _("Use letters, spaces and punctuation only: no line breaks, tabs or invisible characters."),
            code="control_characters",
        )
