"""anymail's webhook URLs, failing closed.

anymail accepts any post when no webhook secret is set (it only warns), answers a body it cannot
parse with 500 (the ESP retries it for days), and cannot start a signed ESP's view without its key
(500 too). Here every anymail view is wrapped so that:

- without `ANYMAIL["WEBHOOK_SECRET"]` every post is refused with 400 (in production the service
  does not start without it, see config/checks.py);
- a view whose ESP key is missing refuses with 400;
- a body that is not the JSON (or form) the ESP sends is refused with 400, and all of a post's
  events are parsed before the first is recorded, so a bad post records nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailAPIError
from anymail.webhooks.base import AnymailCoreWebhookView
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import URLPattern
from django.views.decorators.csrf import csrf_exempt

logger = logging.getLogger(__name__)

FORM_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
# What anymail's parsers raise on a payload that is not shaped as the ESP documents it.
MALFORMED = (ValueError, KeyError, TypeError, AttributeError, IndexError, UnicodeDecodeError)


def body_is_malformed(request: HttpRequest) -> bool:
    """Return whether a non-form body is empty or not a non-empty JSON object or array."""
    if request.content_type in FORM_CONTENT_TYPES:
        return False
    try:
        payload = json.loads(request.body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return True
    return not isinstance(payload, dict | list) or not payload


class FailClosedMixin:
    """Parse every event of a post before recording any; refuse what does not parse."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        view: Any = self
        if body_is_malformed(request):
            return _refuse(request, "the body is not the JSON the ESP sends")
        try:
            view.run_validators(request)  # basic auth, signatures: AnymailWebhookValidationFailure -> 400
        except (*MALFORMED, AnymailAPIError) as error:  # Amazon SES: an SNS envelope that does not parse
            return _refuse(request, f"the envelope does not parse ({type(error).__name__})")
        try:
            events = list(view.parse_events(request))
        except MALFORMED as error:
            return _refuse(request, f"the payload does not parse ({type(error).__name__})")
        for event in events:
            view.signal.send(sender=type(self), event=event, esp_name=view.esp_name)
        return HttpResponse()


def _refuse(request: HttpRequest, reason: str, level: int = logging.WARNING) -> HttpResponse:
    logger.log(level, "webhook post refused: %s", reason, extra={"path": request.path})
    return HttpResponseBadRequest(f"Refused: {reason}.\n", content_type="text/plain")


def webhook_secret_configured() -> bool:
    return bool(
        getattr(settings, "ANYMAIL", {}).get("WEBHOOK_SECRET") or getattr(settings, "ANYMAIL_WEBHOOK_SECRET", None)
    )


def fail_closed(view_class: type[AnymailCoreWebhookView], initkwargs: dict[str, Any]) -> Callable[..., HttpResponse]:
    """Return a view function for `view_class` that fails closed (see the module docstring)."""
    wrapped_class: Any = type(view_class.__name__, (FailClosedMixin, view_class), {"__module__": __name__})
    inner = wrapped_class.as_view(**initkwargs)

    @csrf_exempt
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST" and not webhook_secret_configured():
            return _refuse(request, "ANYMAIL_WEBHOOK_SECRET is not set", logging.ERROR)
        try:
            return inner(request, *args, **kwargs)
        except ImproperlyConfigured as error:  # the ESP's key is missing
            return _refuse(request, f"the webhook is not configured ({error})", logging.ERROR)

    view.view_class = wrapped_class  # type: ignore[attr-defined]
    return view


def _wrap(pattern: Any) -> Any:
    view_class = getattr(pattern.callback, "view_class", None)
    if not isinstance(pattern, URLPattern) or view_class is None or not issubclass(view_class, AnymailCoreWebhookView):
        return pattern
    callback = fail_closed(view_class, getattr(pattern.callback, "view_initkwargs", {}))
    return URLPattern(pattern.pattern, callback, pattern.default_args, pattern.name)


app_name = anymail_urls.app_name
urlpatterns = [_wrap(pattern) for pattern in anymail_urls.urlpatterns]
