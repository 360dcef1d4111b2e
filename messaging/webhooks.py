"""The door of ESP webhooks: authenticate, check, store the raw post, answer. Nothing else.

Every anymail URL is listed, but only the configured ESP's tracking URL answers (the ESP of
EMAIL_BACKEND plus WEBHOOK_ESPS, several during a migration); inbound URLs only with WEBHOOK_INBOUND;
every other one answers 404. A post is then, in this order:

1. refused with 400 when no `ANYMAIL["WEBHOOK_SECRET"]` is set (fail closed; production does not
   start without it), or when the ESP's signing key is missing;
2. Amazon SES (SNS) without credentials: 401 with `WWW-Authenticate: Basic`, as anymail answers,
   because SNS sends its credentials only after that challenge;
3. refused with 413 when larger than WEBHOOK_MAX_BODY_BYTES (WEBHOOK_MAX_ARRAY_BODY_BYTES for ESPs
   that post arrays), 415 when not of a content type the ESP posts;
4. authenticated by anymail's own validators (basic auth, and the ESP's signature where anymail
   checks one): 400 when they fail;
5. refused with 400 when signed longer ago than WEBHOOK_REPLAY_WINDOW_SECONDS (a replay), when empty,
   or when not a JSON object or array within JSON_MAX_DEPTH (JSON ESPs);
6. stored as an EventPost with one INSERT and answered 200. messaging.intake parses it with
   anymail's parser later, in a batch; what it cannot parse is quarantined, never lost.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from io import BytesIO
from typing import Any, cast

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailAPIError, AnymailWebhookValidationFailure
from anymail.webhooks.base import AnymailCoreWebhookView
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.wsgi import WSGIRequest
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Field
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt

from config.jsonlimits import json_too_deep
from messaging.models import EventPost

logger = logging.getLogger(__name__)

FORM_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
JSON_CONTENT_TYPES = frozenset({"application/json"})
# The content types each ESP posts to its tracking URL (anymail's parsers read nothing else).
TRACKING_CONTENT_TYPES: dict[str, frozenset[str]] = {
    "amazon_ses": frozenset({"text/plain", "application/json"}),  # SNS posts JSON as text/plain
    "mailgun": JSON_CONTENT_TYPES | FORM_CONTENT_TYPES,  # legacy webhooks post forms
    "mandrill": FORM_CONTENT_TYPES,
}
# ESPs that post many events at once.
ARRAY_ESPS = frozenset({"sendgrid", "sparkpost", "mailjet", "mandrill", "mailersend", "mailtrap"})
# Request headers never stored: the credentials stay at the door.
SECRET_HEADERS = frozenset({"HTTP_AUTHORIZATION", "HTTP_COOKIE", "HTTP_PROXY_AUTHORIZATION"})
# What a parser that fails on a payload not shaped as the ESP documents it raises.
MALFORMED = (ValueError, KeyError, TypeError, AttributeError, IndexError, UnicodeDecodeError, RecursionError)
# The ESPs whose backend names differ from their webhook URL's.
ESP_ALIASES = {"sendinblue": "brevo", "amazon ses": "amazon_ses"}


def esp_key(name: str) -> str:
    """Return the ESP's key as in its webhook URL ("Amazon SES" -> "amazon_ses", "SendinBlue" -> "brevo")."""
    lowered = name.strip().lower()
    return ESP_ALIASES.get(lowered, lowered.replace(" ", "_"))


def configured_esp() -> str:
    """Return the key of the ESP of EMAIL_BACKEND, or "" for SMTP, files and anymail's test backend."""
    backend = settings.EMAIL_BACKEND
    if not backend.startswith("anymail.backends.") or backend.startswith("anymail.backends.test"):
        return ""
    name = getattr(import_string(backend), "esp_name", None) or backend.rsplit(".", 2)[-2]
    return esp_key(str(name))


def mounted_esps() -> frozenset[str]:
    """Return the keys of the ESPs whose webhook URLs answer: EMAIL_BACKEND's and WEBHOOK_ESPS."""
    esps = {esp_key(name) for name in settings.WEBHOOK_ESPS if name.strip()}
    primary = configured_esp()
    if primary:
        esps.add(primary)
    return frozenset(esps)


def webhook_secret_configured() -> bool:
    return bool(
        getattr(settings, "ANYMAIL", {}).get("WEBHOOK_SECRET") or getattr(settings, "ANYMAIL_WEBHOOK_SECRET", None)
    )


def request_from_post(meta: dict[str, Any], body: bytes) -> WSGIRequest:
    """Return a Django request carrying `body` and `meta` (headers, path, host), as anymail's views read it."""
    environ = {
        "REQUEST_METHOD": "POST",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "443",
        "wsgi.url_scheme": "https",
        **meta,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": BytesIO(body),
    }
    request = WSGIRequest(environ)
    # The body is in hand and within the intake's own limit; reading it again would check it against
    # DATA_UPLOAD_MAX_MEMORY_SIZE, which is smaller than a large array post.
    request._body = body  # type: ignore[attr-defined]
    return request


def stored_meta(request: HttpRequest) -> dict[str, str]:
    """Return what the parser needs of the request besides its body, without its credentials."""
    meta = {
        key: value
        for key, value in request.META.items()
        if isinstance(value, str) and key.startswith("HTTP_") and key not in SECRET_HEADERS
    }
    meta["CONTENT_TYPE"] = request.META.get("CONTENT_TYPE", "")
    meta["PATH_INFO"] = request.path_info
    meta["wsgi.url_scheme"] = request.scheme or "https"
    for key in ("SERVER_NAME", "SERVER_PORT"):
        if isinstance(request.META.get(key), str):
            meta[key] = request.META[key]
    return meta


def signed_at(esp: str, request: HttpRequest) -> float | None:
    """Return the signature timestamp of a signed post (epoch seconds), or None where the ESP signs none.

    Resend's (svix) timestamp is checked by its own validator, within five minutes.
    """
    if esp != "mailgun":
        return None
    if request.content_type == "application/json":
        return float(json.loads(request.body)["signature"]["timestamp"])
    return float(request.POST["timestamp"])


def body_refusal(esp: str, request: HttpRequest, body: bytes) -> str:
    """Return why a JSON body is not taken (empty, not JSON, not a non-empty object or array, too deep), or ""."""
    if not body.strip():
        return "the body is empty"
    if request.content_type in FORM_CONTENT_TYPES:
        return ""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return "the body is not JSON"
    if not isinstance(payload, dict | list) or not payload:
        return "the body is not the JSON the ESP sends"
    if json_too_deep(payload, settings.JSON_MAX_DEPTH):
        return "the JSON is nested too deeply"
    return ""


_last_trigger = 0.0


def trigger_processing() -> None:
    """Ask a worker to process the stored posts, at most every EVENT_INTAKE_TRIGGER_SECONDS per process.

    Beat asks too (EVENT_INTAKE_BEAT_SECONDS): a lost trigger delays processing, it loses nothing.
    """
    global _last_trigger
    now = time.monotonic()
    if now - _last_trigger < settings.EVENT_INTAKE_TRIGGER_SECONDS:
        return
    _last_trigger = now
    from messaging.tasks import event_posts_process

    try:
        event_posts_process.apply_async(expires=300)
    except Exception:  # a broker outage must not refuse a post that is stored
        logger.warning("could not ask for event processing; beat will", exc_info=True)


class IntakeView:
    """The intake of one anymail webhook URL (see the module docstring)."""

    def __init__(self, view_class: type[AnymailCoreWebhookView], initkwargs: dict[str, Any], esp: str, kind: str):
        self.view_class = view_class
        self.initkwargs = initkwargs
        self.esp = esp
        self.kind = kind
        self.anymail_view = view_class.as_view(**initkwargs)

    def is_mounted(self) -> bool:
        if self.kind == EventPost.Kind.INBOUND and not settings.WEBHOOK_INBOUND:
            return False
        return self.esp in mounted_esps()

    def max_body(self) -> int:
        return settings.WEBHOOK_MAX_ARRAY_BODY_BYTES if self.esp in ARRAY_ESPS else settings.WEBHOOK_MAX_BODY_BYTES

    def content_types(self) -> frozenset[str]:
        if self.kind == EventPost.Kind.INBOUND:
            return JSON_CONTENT_TYPES | FORM_CONTENT_TYPES | {"text/plain"}
        return TRACKING_CONTENT_TYPES.get(self.esp, JSON_CONTENT_TYPES)

    def __call__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not self.is_mounted():
            raise Http404("No webhook for this ESP here.")
        if request.method != "POST":
            return self.anymail_view(request, *args, **kwargs)  # HEAD, OPTIONS: anymail's answers
        if not webhook_secret_configured():
            return refuse(request, "ANYMAIL_WEBHOOK_SECRET is not set", level=logging.ERROR)
        try:
            view: Any = self.view_class(**self.initkwargs)
        except ImproperlyConfigured as error:  # the ESP's signing key is missing
            return refuse(request, f"the webhook is not configured ({error})", level=logging.ERROR)
        if self.esp == "amazon_ses" and not request.META.get("HTTP_AUTHORIZATION"):
            response = HttpResponse(status=401)  # SNS sends credentials only after this challenge
            response["WWW-Authenticate"] = 'Basic realm="Anymail WEBHOOK_SECRET"'
            return response
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return refuse(request, "the Content-Length is not a number")
        limit = self.max_body()
        if length == 0:
            return refuse(request, "the body is empty")
        if length > limit:
            return refuse(request, f"the body is larger than {limit} bytes", status=413)
        if request.content_type not in self.content_types():
            return refuse(request, f"the content type is not {' or '.join(sorted(self.content_types()))}", status=415)
        body = request.read(limit + 1)
        if len(body) > limit:
            return refuse(request, f"the body is larger than {limit} bytes", status=413)
        posted = request_from_post({**stored_meta(request), **_credentials(request)}, body)
        try:
            view.run_validators(posted)  # basic auth, the ESP's signature
            timestamp = signed_at(self.esp, posted)
        except AnymailWebhookValidationFailure as error:
            return refuse(request, f"not authenticated ({error})")
        except ImproperlyConfigured as error:  # a key anymail reads only when validating (Mandrill)
            return refuse(request, f"the webhook is not configured ({error})", level=logging.ERROR)
        except (*MALFORMED, AnymailAPIError) as error:  # an envelope (SNS, Mailgun's signature) that does not parse
            return refuse(request, f"the envelope does not parse ({type(error).__name__})")
        if timestamp is not None and abs(time.time() - timestamp) > settings.WEBHOOK_REPLAY_WINDOW_SECONDS:
            return refuse(request, f"signed at {datetime.fromtimestamp(timestamp):%Y-%m-%d %H:%M:%S}: a replay")
        reason = body_refusal(self.esp, posted, body)
        if reason:
            return refuse(request, reason)
        event_post_store(esp=self.esp, kind=self.kind, body=body, meta=stored_meta(request))
        transaction.on_commit(trigger_processing)
        return HttpResponse()


_STORED_COLUMNS = ("esp", "kind", "received_at", "body", "meta", "state", "events", "error")


def _insert_event_post(*, esp: str, kind: str, body: bytes, meta: dict[str, str]) -> None:
    """INSERT one row, each value prepared by its model field: the ORM's save() did the same at twice
    the CPU (a model instance, pre/post-save signals, the SQL compiler), a tenth of a post's cost."""
    fields = [cast(Field, EventPost._meta.get_field(name)) for name in _STORED_COLUMNS]
    values = (esp, kind, timezone.now(), body, meta, EventPost.State.NEW, 0, "")
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(EventPost._meta.db_table)} ({', '.join(quote(name) for name in _STORED_COLUMNS)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [field.get_db_prep_save(value, connection) for field, value in zip(fields, values, strict=True)]
        )


def event_post_store(*, esp: str, kind: str, body: bytes, meta: dict[str, str]) -> None:
    """Store one post with one INSERT (its own transaction, committed when this returns).

    Django's health check of a persistent connection (CONN_HEALTH_CHECKS) costs a round trip to the
    database before the first query of each request, as much as the INSERT itself; here the INSERT is
    the check: when it finds the connection dead, it is made once more on a new connection. A post stored
    twice that way records nothing twice (events are de-duplicated by their key when processed).
    """
    if connection.in_atomic_block:  # a caller's transaction: its connection is not ours to replace
        _insert_event_post(esp=esp, kind=kind, body=body, meta=meta)
        return
    connection.health_check_done = True  # type: ignore[attr-defined]
    try:
        _insert_event_post(esp=esp, kind=kind, body=body, meta=meta)
    except (InterfaceError, OperationalError):
        logger.warning("the database connection was lost; storing the post on a new one", exc_info=True)
        connection.close()
        _insert_event_post(esp=esp, kind=kind, body=body, meta=meta)


def _credentials(request: HttpRequest) -> dict[str, str]:
    auth = request.META.get("HTTP_AUTHORIZATION")
    return {"HTTP_AUTHORIZATION": auth} if isinstance(auth, str) else {}


def refuse(request: HttpRequest, reason: str, *, status: int = 400, level: int = logging.WARNING) -> HttpResponse:
    logger.log(level, "webhook post refused: %s", reason, extra={"path": request.path})
    return HttpResponse(f"Refused: {reason}.\n", status=status, content_type="text/plain")


def _esp_and_kind(pattern: URLPattern) -> tuple[str, str]:
    route = str(pattern.pattern).lstrip("^")
    esp = esp_key(route.split("/", 1)[0])
    if esp == "mandrill":  # one URL for tracking and inbound
        return esp, EventPost.Kind.TRACKING
    return esp, EventPost.Kind.INBOUND if "inbound" in route else EventPost.Kind.TRACKING


def _wrap(pattern: Any) -> Any:
    view_class = getattr(pattern.callback, "view_class", None)
    if not isinstance(pattern, URLPattern) or view_class is None or not issubclass(view_class, AnymailCoreWebhookView):
        return pattern
    esp, kind = _esp_and_kind(pattern)
    intake = IntakeView(view_class, getattr(pattern.callback, "view_initkwargs", {}), esp, kind)
    callback: Callable[..., HttpResponse] = csrf_exempt(intake)
    return URLPattern(pattern.pattern, callback, pattern.default_args, pattern.name)


app_name = anymail_urls.app_name
urlpatterns = [_wrap(pattern) for pattern in anymail_urls.urlpatterns]
