"""JSON from strangers, within limits: a nesting depth past which nothing is parsed further.

Python's json module recurses once per level and raises RecursionError around a thousand levels
(a 500 where it is not caught); far less than that already costs every later reader.
"""

from __future__ import annotations

from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def json_too_deep(value: Any, limit: int) -> bool:
    """Return whether `value` (parsed JSON) nests objects and arrays deeper than `limit` levels."""
    level = [value]
    for _depth in range(limit):
        children: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                children.extend(child for child in item.values() if isinstance(child, dict | list))
            elif isinstance(item, list):
                children.extend(child for child in item if isinstance(child, dict | list))
        if not children:
            return False
        level = children
    return True


class DepthLimitedJSONParser(JSONParser):
    """DRF's JSON parser that answers 400 to JSON nested deeper than JSON_MAX_DEPTH (or too deep to parse)."""

    def parse(self, stream: IO[Any], media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise ParseError("JSON parse error - nested too deeply") from error
        if json_too_deep(data, settings.JSON_MAX_DEPTH):
            raise ParseError(f"JSON parse error - nested deeper than {settings.JSON_MAX_DEPTH} levels")
        return data


__all__ = ["DepthLimitedJSONParser", "json_too_deep"]
