"""Walk every admin URL and every action as staff without the permission for it: nothing is shown or done.

The URLs are not listed by hand: they are enumerated from the admin site (every ModelAdmin's
get_urls) and from the project's URLconf (views mounted under /admin/), so a view added tomorrow
without a permission check fails here. Each URL is requested with GET and POST, its path parameters
filled with a real object's pk; each action of each ModelAdmin is POSTed to its changelist. After
the walk the database holds exactly what it held before, nothing was queued and no mail left.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission, User
from django.core import mail
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils import timezone

from cadence.models import ContactHealth, Schedule, WelcomeStep
from messaging.models import Delivery, DeliveryEvent, SendBrake
from preferences.models import CadencePolicy, ConsentEvent, Contact, Conversion, ImportJob, SuppressionEntry
from tests.factories import AnnouncementFactory, ContactFactory, ContentItemFactory, ProductFactory, ReminderRuleFactory

pytestmark = pytest.mark.django_db

SECRET_NAME = "Walkerina"
# The pages every staff user may open: their own account, the (empty) index, the translations catalog.
OPEN_TO_STAFF = {"admin:index", "admin:login", "admin:password_change", "admin:password_change_done", "admin:jsi18n"}
# Logging out ends the walk's session: it is the one door left alone.
SKIPPED = {"admin:logout"}
# Apps whose tables the walk compares before and after.
WATCHED_APPS = {"preferences", "messaging", "cadence", "auth", "authtoken", "django_celery_beat"}
UNCHANGED_FIELDS = {"last_login"}  # force_login writes it on every login


@pytest.fixture
def universe(topics) -> dict[str, Any]:
    """One row of every model the admin shows, so each URL's parameters point at something real."""
    now = timezone.now()
    contact: Contact = ContactFactory.create(
        email="walk-target@example.com", first_name=SECRET_NAME, topics=[topics[0]]
    )
    pending = ContactFactory(email="walk-pending@example.com", first_name=SECRET_NAME, status="pending")
    ProductFactory(contact=contact)
    ReminderRuleFactory()
    ContentItemFactory(topic=topics[0])
    AnnouncementFactory()
    ConsentEvent.objects.create(contact=contact, kind=ConsentEvent.Kind.CONFIRMED)
    SuppressionEntry.objects.create(address_hash="0" * 64, reason=SuppressionEntry.Reason.values[0])
    Conversion.objects.create(contact=contact, potential="high", signed_up_at=now, days_as_prospect=3)
    CadencePolicy.objects.get_or_create(potential="high", defaults={"max_frequency": "", "welcome_only": False})
    ImportJob.objects.create(file_path="/nonexistent.csv", original_name="walk.csv", requested_by="x")
    # A second factor of another staff user: its admin's pages (config, QR code) must refuse the walker.
    from django_otp.plugins.otp_totp.models import TOTPDevice

    owner = get_user_model().objects.create_user("device-owner", is_staff=True)
    TOTPDevice.objects.create(user=owner, name="walk", confirmed=True)
    if not WelcomeStep.objects.exists():
        WelcomeStep.objects.create(position=1, template="welcome", delay=timedelta(days=1))
    Schedule.objects.create(contact=contact, next_due_at=now - timedelta(days=1))
    ContactHealth.objects.create(contact=contact, state="cooling")
    failed = Delivery.objects.create(
        contact=contact,
        kind="welcome",
        template="welcome",
        idempotency_key=f"walk:{contact.pk}",
        status=Delivery.Status.FAILED,
        error="permanent: 400",
    )
    DeliveryEvent.objects.create(
        delivery=failed, contact=contact, esp_name="test", event_id="walk-1", type="delivered", occurred_at=now
    )
    SendBrake.objects.create(send_key="walk:send", sent=300, bounced=40, status=SendBrake.Status.HELD)
    Group.objects.get_or_create(name="walk group")
    _celery_beat_rows()
    return {"contact": contact, "pending": pending, "delivery": failed}


def _celery_beat_rows() -> None:
    from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask

    interval = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.SECONDS)
    CrontabSchedule.objects.create()
    ClockedSchedule.objects.create(clocked_time=timezone.now())
    PeriodicTask.objects.create(name="walk task", task="walk.task", interval=interval)


def _pk_of(model: Any) -> str:
    first = model._default_manager.order_by("pk").first()
    return str(first.pk) if first is not None else "0"


def _params(pattern: Any) -> list[str]:
    if isinstance(pattern, RoutePattern):
        return list(pattern.converters)
    if isinstance(pattern, RegexPattern):
        return list(pattern.regex.groupindex)
    return []


def _fill(route: str, values: dict[str, str]) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], route)


def admin_urls(universe: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """Yield (name, URL, model or None) for every admin URL: the site's own, every ModelAdmin's and the project's admin views."""
    from preferences.models import Topic

    shared = {
        "topic_id": _pk_of(Topic),
        "job_id": _pk_of(ImportJob),
        "delivery_id": str(universe["delivery"].pk),
        "content_type_id": str(
            apps.get_model("contenttypes", "ContentType").objects.get_for_model(Contact).pk,
        ),
    }
    site = admin.site
    for pattern in site.get_urls():
        if isinstance(pattern, URLResolver):
            continue  # the ModelAdmins, walked below with their model
        name = f"admin:{pattern.name}" if pattern.name else ""
        if name in SKIPPED or not name:
            continue
        if name == "admin:app_list":
            for app_label in {model._meta.app_label for model in site._registry}:
                yield f"{name}:{app_label}", reverse(name, kwargs={"app_label": app_label}), None
            continue
        values = {**shared, "object_id": str(universe["contact"].pk)}
        yield name, reverse(name, kwargs={key: values[key] for key in _params(pattern.pattern)}), None
    for model, model_admin in site._registry.items():
        values = {**shared, "object_id": _pk_of(model), "id": _pk_of(model), "pk": _pk_of(model)}
        prefix = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for pattern in model_admin.get_urls():
            assert isinstance(pattern.pattern, RoutePattern), pattern
            name = f"{model._meta.label_lower}:{pattern.name or pattern.pattern}"
            yield name, prefix + _fill(str(pattern.pattern), values), model
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLPattern) and str(pattern.pattern).startswith("admin/"):
            yield pattern.name or str(pattern.pattern), "/" + _fill(str(pattern.pattern), shared), None


def admin_actions() -> Iterator[tuple[Any, str, str]]:
    """Yield (model, changelist URL, action name) for every action any ModelAdmin defines, allowed or not."""
    for model, model_admin in admin.site._registry.items():
        names = [name for _func, name, _desc in model_admin._get_base_actions()]  # type: ignore[attr-defined]
        if hasattr(model_admin, "export_admin_action"):
            names.append("export_admin_action")
        for name in names:
            yield model, reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"), name


def database_fingerprint() -> dict[str, str]:
    """Return a digest of every row of every watched table (many-to-many tables included)."""
    digests = {}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.app_label not in WATCHED_APPS or model._meta.proxy:
            continue
        fields = [f.attname for f in model._meta.concrete_fields if f.attname not in UNCHANGED_FIELDS]
        rows = list(model._base_manager.order_by("pk").values_list(*fields))
        digests[model._meta.label] = hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()
    return digests


def staff_client(client, permissions: list[Permission]) -> Any:
    user = User.objects.create_user("walker", password="pw", is_staff=True)
    user.user_permissions.set(permissions)
    client.force_login(user)
    return client


def _post_data(model: Any = None) -> dict[str, Any]:
    """A POST that would do the most if it were let through: every row selected and every confirmation given."""
    selected = [str(pk) for pk in (model or Contact)._default_manager.values_list("pk", flat=True)]
    return {"_selected_action": selected, "confirm": "yes", "post": "yes", "index": "0", "language": "both"}


def walk(client, universe: dict[str, Any], capture) -> list[tuple[str, str, str, int]]:
    """Request every admin URL (GET and POST) and every action; return the responses that gave something away."""
    leaks = []
    with capture(execute=True) as queued:
        for name, url, model in admin_urls(universe):
            for method in ("get", "post"):
                response = client.post(url, _post_data(model)) if method == "post" else client.get(url)
                body = response.content.decode(errors="replace")
                refused = response.status_code in (302, 403, 404, 405) or name in OPEN_TO_STAFF
                shown = SECRET_NAME in body or universe["contact"].email in body
                exported = "attachment" in response.get("Content-Disposition", "")
                if not refused or shown or exported:
                    leaks.append((method.upper(), name, url, response.status_code))
        for model, changelist, action in admin_actions():
            response = client.post(changelist, {**_post_data(model), "action": action})
            body = response.content.decode(errors="replace")
            if response.status_code not in (302, 403) or SECRET_NAME in body:
                leaks.append(("ACTION", f"{model._meta.label_lower}:{action}", changelist, response.status_code))
    assert not queued, f"{len(queued)} on_commit callbacks (tasks) were queued by the walk"
    return leaks


def test_the_walk_finds_every_door_without_a_list_kept_by_hand(universe):
    urls = {url for _name, url, _model in admin_urls(universe)}
    actions = {action for _label, _changelist, action in admin_actions()}
    announcement = _pk_of(apps.get_model("cadence", "Announcement"))
    for door in [
        "/admin/preferences/contact/export/",
        "/admin/preferences/contact/import/",
        "/admin/preferences/contact/process_import/",
        "/admin/preferences/contact/import-large/",
        f"/admin/preferences/contact/import-large/{_pk_of(ImportJob)}/",
        f"/admin/preferences/topic/{_pk_of(apps.get_model('preferences', 'Topic'))}/preview/",
        f"/admin/cadence/announcement/{announcement}/confirm/",
        f"/admin/cadence/announcement/{announcement}/test/",
        f"/admin/ops/retry/{universe['delivery'].pk}/",
        "/admin/ops/",
        "/admin/dashboard/",
    ]:
        assert door in urls
    expected = {"invite", "export_data", "erase_data", "export_admin_action", "resume", "cancel", "resend_welcome"}
    assert expected | {"confirm_and_send", "resume_sending", "delete_selected"} <= actions
    assert len(urls) > 150


def test_every_admin_url_and_action_refuses_staff_without_permissions(
    client, universe, django_capture_on_commit_callbacks
):
    walker = staff_client(client, [])
    before = database_fingerprint()

    leaks = walk(walker, universe, django_capture_on_commit_callbacks)

    assert leaks == []
    changed = {table for table, digest in database_fingerprint().items() if before.get(table) != digest}
    assert changed == set() and mail.outbox == []


def test_staff_who_may_view_every_list_still_cannot_export_import_invite_send_or_erase(
    client, universe, django_capture_on_commit_callbacks
):
    """Seeing a list is not a door to the bulk, sending or data-rights operations on it."""
    views = [p for p in Permission.objects.all() if p.codename == f"view_{p.content_type.model}"]
    viewer = staff_client(client, views)
    before = database_fingerprint()
    data = _post_data()
    doors = [
        "/admin/preferences/contact/export/",
        "/admin/preferences/contact/import/",
        "/admin/preferences/contact/import-large/",
        f"/admin/cadence/announcement/{_pk_of(apps.get_model('cadence', 'Announcement'))}/confirm/",
        f"/admin/cadence/announcement/{_pk_of(apps.get_model('cadence', 'Announcement'))}/test/",
        "/admin/ops/",
        "/admin/dashboard/",
    ]

    with django_capture_on_commit_callbacks(execute=True) as queued:
        for url in doors:
            assert viewer.get(url).status_code == 403, url
            assert viewer.post(url, data).status_code == 403, url
        for model, changelist, action in admin_actions():
            response = viewer.post(changelist, {**_post_data(model), "action": action})
            assert "attachment" not in response.get("Content-Disposition", ""), action
            assert "application/json" not in response.get("Content-Type", ""), action
        for name, url, model in admin_urls(universe):
            response = viewer.post(url, _post_data(model))
            assert "attachment" not in response.get("Content-Disposition", ""), name

    assert queued == [] and mail.outbox == []
    changed = {table for table, digest in database_fingerprint().items() if before.get(table) != digest}
    assert changed == set()
