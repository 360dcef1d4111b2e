from __future__ import annotations

import contextlib
import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from messaging.announcements import (
    announcement_audience,
    announcement_audience_breakdown,
    announcement_confirm,
    announcement_progress,
    announcement_resume,
)
from messaging.models import Announcement, Delivery, DeliveryEvent
from messaging.preview import (
    PREVIEW_TEMPLATES,
    announcement_preview,
    announcement_send_test,
    find_contact,
    preview_message,
)
from messaging.tasks import enqueue_bulk, expand_announcement
from preferences.admin import ContactAdmin, ContactSearchMixin, TopicAdmin
from preferences.models import Contact, Locale, Topic

TIMELINE_LENGTH = 200


class DeliveryEventInline(admin.TabularInline):
    model = DeliveryEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = ("occurred_at", "type", "esp_name", "esp_type", "description", "click_url")
    ordering = ["occurred_at", "id"]

    def has_add_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "contact", "kind", "status", "feedback", "esp_name", "sent_at", "attempts"]
    list_filter = ["status", "kind", "esp_name", "feedback"]
    list_select_related = ["contact"]
    search_fields = ["=id", "=esp_message_id", "contact__email"]
    search_help_text = _("The start of an email address, or an exact delivery id or ESP message id.")
    raw_id_fields = ["contact"]
    show_full_result_count = False
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [DeliveryEventInline]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = Q(contact__email__startswith=term.lower()) | Q(esp_message_id=term)
        with contextlib.suppress(ValueError):
            matches |= Q(pk=uuid.UUID(term))
        return queryset.filter(matches), False


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(ContactSearchMixin, admin.ModelAdmin):
    list_display = ["occurred_at", "type", "esp_name", "contact", "delivery"]
    list_filter = ["type", "esp_name"]
    list_select_related = ["contact", "delivery"]
    raw_id_fields = ["contact", "delivery"]
    show_full_result_count = False
    readonly_fields = [f.name for f in DeliveryEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


def delivery_timeline(contact: Contact) -> list[tuple]:
    """Return the contact's mail history, newest first: each delivery made and sent, each ESP event."""
    rows: list[tuple] = []
    for delivery in contact.deliveries.order_by("-created_at")[:TIMELINE_LENGTH]:
        rows.append((delivery.created_at, delivery.get_kind_display(), _("queued"), ""))
        if delivery.sent_at:
            rows.append((delivery.sent_at, delivery.get_kind_display(), _("sent"), delivery.esp_name))
        elif delivery.status in (Delivery.Status.FAILED, Delivery.Status.CANCELLED):
            rows.append(
                (delivery.updated_at, delivery.get_kind_display(), delivery.get_status_display(), delivery.error)
            )
    events = contact.delivery_events.select_related("delivery").order_by("-occurred_at")[:TIMELINE_LENGTH]
    for event in events:
        detail = event.click_url or event.description
        rows.append((event.occurred_at, event.delivery.get_kind_display(), event.get_type_display(), detail))
    rows.sort(key=lambda row: row[0], reverse=True)
    return rows[:TIMELINE_LENGTH]


class ContactWithTimelineAdmin(ContactAdmin):
    """The contact admin of preferences, with the mail timeline that messaging knows."""

    readonly_fields = [*ContactAdmin.readonly_fields, "suppression_reason", "timeline"]

    @admin.display(description=_("mail timeline"))
    def timeline(self, contact: Contact) -> SafeString:
        rows = delivery_timeline(contact) if contact.pk else []
        if not rows:
            return format_html("<p>{}</p>", _("No mail yet."))
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((f"{at:%Y-%m-%d %H:%M:%S}", kind, what, str(detail)[:200]) for at, kind, what, detail in rows),
        )
        head = format_html(
            "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>", _("when"), _("mail"), _("what"), _("detail")
        )
        return format_html("<table>{}{}</table>", head, body)


admin.site.unregister(Contact)
admin.site.register(Contact, ContactWithTimelineAdmin)


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "audience", "status", "audience_count", "created_count", "confirmed_at"]
    list_filter = ["status", "kind", "audience"]
    actions = ["confirm_and_send", "resume_sending"]
    fieldsets = [
        (None, {"fields": ["title", "kind"]}),
        (_("Message"), {"fields": ["subject_en", "body_en", "subject_nl", "body_nl", "preview"]}),
        (_("Audience"), {"fields": ["audience", "segment_potential", "segment_lifecycle", "segment_topic"]}),
        (
            _("Sending"),
            {
                "fields": [
                    "scheduled_at",
                    "status",
                    "recipients",
                    "progress",
                    "audience_count",
                    "created_count",
                    "confirmed_by",
                ]
            },
        ),
    ]
    readonly_fields = [
        "preview",
        "status",
        "recipients",
        "progress",
        "audience_count",
        "created_count",
        "confirmed_by",
    ]

    @admin.display(description=_("preview"))
    def preview(self, obj: Announcement) -> SafeString | str:
        """Both languages as they will arrive (a sample reader's name and links), and a test send."""
        if obj.pk is None:
            return _("Save the draft to see it rendered.")
        frames = format_html_join(
            "",
            '<figure class="announcement-preview"><figcaption><strong>{}</strong>: {}</figcaption>'
            '<iframe title="{}" sandbox srcdoc="{}" style="width:100%;height:22rem;border:1px solid #ccc"></iframe>'
            "</figure>",
            (
                (label, rendered.subject, label, rendered.html)
                for label, rendered in (
                    (language, announcement_preview(announcement=obj, locale=code)) for code, language in Locale.choices
                )
            ),
        )
        test_url = reverse("admin:messaging_announcement_test", args=[obj.pk])
        return format_html(
            '<div style="display:grid;grid-template-columns:repeat(auto-fit,minmax(18rem,1fr));gap:1rem">{}</div>'
            '<p><a class="button" href="{}">{}</a></p>',
            frames,
            test_url,
            _("Send a test to an address…"),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Announcement | None = None) -> list[str]:
        if obj is not None and obj.status != Announcement.Status.DRAFT:
            # Once confirmed, what was counted is what goes out.
            return [f.name for f in Announcement._meta.fields if f.editable] + self.readonly_fields
        return self.readonly_fields

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.confirm_view)
        test = self.admin_site.admin_view(self.test_send_view)
        return [
            path("<int:object_id>/confirm/", view, name="messaging_announcement_confirm"),
            path("<int:object_id>/test/", test, name="messaging_announcement_test"),
            *super().get_urls(),
        ]

    def test_send_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Send the announcement to one chosen address, in one or both languages (no delivery is recorded)."""
        announcement = get_object_or_404(Announcement, pk=object_id)
        if not self.has_change_permission(request, announcement):
            raise PermissionDenied
        change_url = reverse("admin:messaging_announcement_change", args=[announcement.pk])
        form = AnnouncementTestForm(request.POST or None, initial={"address": getattr(request.user, "email", "")})
        if request.method == "POST" and form.is_valid():
            locales = Locale.values if form.cleaned_data["language"] == "both" else [form.cleaned_data["language"]]
            for locale in locales:
                announcement_send_test(announcement=announcement, address=form.cleaned_data["address"], locale=locale)
            self.message_user(
                request,
                ngettext(
                    "Test sent to %(address)s (%(n)d message).",
                    "Test sent to %(address)s (%(n)d messages).",
                    len(locales),
                )
                % {"address": form.cleaned_data["address"], "n": len(locales)},
                messages.SUCCESS,
            )
            return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Send a test of this announcement"),
            "announcement": announcement,
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/messaging/announcement/test_send.html", context)

    @admin.display(description=_("will receive it"))
    def recipients(self, obj: Announcement) -> str:
        if obj.pk is None:
            return _("save the draft to count")
        if obj.status != Announcement.Status.DRAFT:
            return _("%(n)s counted at confirmation") % {"n": obj.audience_count}
        count = announcement_audience(obj).count()
        url = reverse("admin:messaging_announcement_confirm", args=[obj.pk])
        return format_html('{} <a class="button" href="{}">{}</a>', count, url, _("Confirm and send…"))

    @admin.display(description=_("progress"))
    def progress(self, obj: Announcement) -> str:
        if obj.pk is None or obj.status == Announcement.Status.DRAFT:
            return "-"
        counts = announcement_progress(obj)
        return (
            _("queued %(queued)s · sending %(sending)s · sent %(sent)s · failed %(failed)s · skipped %(cancelled)s")
            % counts
        )

    @admin.action(description=_("Confirm and send the selected announcement…"), permissions=["change"])
    def confirm_and_send(self, request: HttpRequest, queryset: QuerySet[Announcement]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, _("Choose exactly one announcement to confirm."), messages.WARNING)
            return None
        return redirect("admin:messaging_announcement_confirm", queryset.get().pk)

    @admin.action(description=_("Resume sending (after a lost worker or broker)"), permissions=["change"])
    def resume_sending(self, request: HttpRequest, queryset: QuerySet[Announcement]) -> None:
        enqueued = sum(
            announcement_resume(
                announcement=announcement,
                enqueue_expand=lambda pk: expand_announcement.delay(pk),
                enqueue_sends=enqueue_bulk,
            )
            for announcement in queryset
        )
        self.message_user(request, _("%(n)s queued sends enqueued again.") % {"n": enqueued}, messages.SUCCESS)

    def confirm_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """GET: show the exact audience count and ask for confirmation. POST: confirm and start sending."""
        announcement = get_object_or_404(Announcement, pk=object_id)
        if not self.has_change_permission(request, announcement):
            raise PermissionDenied
        change_url = reverse("admin:messaging_announcement_change", args=[announcement.pk])
        if announcement.status != Announcement.Status.DRAFT:
            self.message_user(request, _("This announcement was confirmed already."), messages.WARNING)
            return redirect(change_url)
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            confirmed = announcement_confirm(
                announcement=announcement,
                confirmed_by=request.user.get_username(),
                enqueue=lambda pk: expand_announcement.delay(pk),
            )
            if confirmed:
                announcement.refresh_from_db()
                if announcement.scheduled_at and announcement.scheduled_at > timezone.now():
                    message = _("Confirmed: sending to %(n)s recipients starts at %(at)s.") % {
                        "n": announcement.audience_count,
                        "at": date_format(timezone.localtime(announcement.scheduled_at), "DATETIME_FORMAT"),
                    }
                else:
                    message = _("Confirmed: sending to %(n)s recipients.") % {"n": announcement.audience_count}
                self.message_user(request, message, messages.SUCCESS)
            return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Send this announcement?"),
            "announcement": announcement,
            "count": announcement_audience(announcement).count(),
            "breakdown": _breakdown_rows(announcement_audience_breakdown(announcement)),
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/messaging/announcement/confirm.html", context)


def _breakdown_rows(counts: dict[str, int]) -> list[tuple[str, int, int, int]]:
    """Return (language, with marketing consent, service only, total) rows for the confirmation page."""
    rows = []
    for code, language in Locale.choices:
        marketing, service = counts[f"{code}_marketing"], counts[f"{code}_service"]
        rows.append((language, marketing, service, marketing + service))
    return rows


class AnnouncementTestForm(forms.Form):
    address = forms.EmailField(label=_("Send to"))
    language = forms.ChoiceField(label=_("Language"), choices=[("both", _("both")), *Locale.choices], initial="both")


class PreviewForm(forms.Form):
    contact = forms.CharField(label=_("Contact (email address, CRM id or id)"))
    template = forms.ChoiceField(label=_("Message"), choices=[(name, name) for name in PREVIEW_TEMPLATES])


class TopicPreviewAdmin(TopicAdmin):
    """Topics, with a preview of a mail about the topic rendered for a chosen contact."""

    list_display = [*TopicAdmin.list_display, "preview_link"]

    @admin.display(description=_("preview"))
    def preview_link(self, topic: Topic) -> str:
        url = reverse("admin:preferences_topic_preview", args=[topic.pk])
        return format_html('<a href="{}">{}</a>', url, _("Preview a mail"))

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:topic_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="preferences_topic_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest, topic_id: int) -> HttpResponse:
        topic = get_object_or_404(Topic, pk=topic_id)
        form = PreviewForm(request.GET or None)
        rendered = None
        if form.is_bound and form.is_valid():
            contact = find_contact(form.cleaned_data["contact"])
            if contact is None:
                form.add_error("contact", _("No contact with this address or id."))
            else:
                rendered = preview_message(contact=contact, template=form.cleaned_data["template"], topic=topic)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Preview: %(topic)s") % {"topic": topic},
            "topic": topic,
            "form": form,
            "rendered": rendered,
        }
        return TemplateResponse(request, "admin/messaging/topic_preview.html", context)


admin.site.unregister(Topic)
admin.site.register(Topic, TopicPreviewAdmin)
