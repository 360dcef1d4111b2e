from __future__ import annotations

import contextlib
import uuid
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from messaging.brake import send_cancel, send_resume
from messaging.models import KIND_LABELS, Delivery, DeliveryEvent, EventPost, SendBrake
from messaging.preview import PREVIEW_TEMPLATES, find_contact, preview_message
from preferences.admin import ContactAdmin, ContactSearchMixin, TopicAdmin
from preferences.models import Contact, Topic

TIMELINE_LENGTH = 200


class DeliveryEventInline(admin.TabularInline):
    model = DeliveryEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = ("occurred_at", "type", "esp_name", "esp_type", "description", "click_url")
    ordering = ["occurred_at", "id"]

    def has_add_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


class KindFilter(admin.SimpleListFilter):
    """The producers' kinds of mail, by the names they gave them."""

    title = _("kind")
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return sorted(KIND_LABELS.items(), key=lambda item: str(item[1]))

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(kind=self.value()) if self.value() else queryset


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "contact", "kind_label", "status", "feedback", "esp_name", "sent_at", "attempts"]
    list_filter = ["status", KindFilter, "esp_name", "feedback"]
    list_select_related = ["contact"]
    search_fields = ["=id", "=esp_message_id", "contact__email"]
    search_help_text = _("The start of an email address, or an exact delivery id or ESP message id.")
    raw_id_fields = ["contact"]
    show_full_result_count = False
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [DeliveryEventInline]

    @admin.display(description=_("kind"), ordering="kind")
    def kind_label(self, delivery: Delivery) -> str:
        return delivery.kind_label

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
        rows.append((delivery.created_at, delivery.kind_label, _("queued"), ""))
        if delivery.sent_at:
            rows.append((delivery.sent_at, delivery.kind_label, _("sent"), delivery.esp_name))
        elif delivery.status in (Delivery.Status.FAILED, Delivery.Status.CANCELLED):
            rows.append((delivery.updated_at, delivery.kind_label, delivery.get_status_display(), delivery.error))
    events = contact.delivery_events.select_related("delivery").order_by("-occurred_at")[:TIMELINE_LENGTH]
    for event in events:
        detail = event.click_url or event.description
        rows.append((event.occurred_at, event.delivery.kind_label, event.get_type_display(), detail))
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
        # The preview shows a contact's name and choices: it needs the right to view contacts.
        if not request.user.has_perms(["preferences.view_topic", "preferences.view_contact"]):
            raise PermissionDenied
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


@admin.register(EventPost)
class EventPostAdmin(admin.ModelAdmin):
    """ESP posts as they came: read only (view permission); the raw body needs `view_event_post_body`."""

    list_display = ["id", "received_at", "esp", "kind", "state", "events", "processed_at"]
    list_filter = ["state", "esp", "kind"]
    show_full_result_count = False
    FIELDS = ("esp", "kind", "received_at", "state", "events", "processed_at", "error", "meta", "raw_body")
    fields = readonly_fields = FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[EventPost]:
        return super().get_queryset(request).defer("body")

    @admin.display(description=_("body"))
    def raw_body(self, obj: EventPost) -> str:
        return bytes(EventPost.objects.values_list("body", flat=True).get(pk=obj.pk)).decode("utf-8", "replace")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if request.user.has_perm("messaging.view_event_post_body"):
            return self.FIELDS
        return tuple(name for name in self.FIELDS if name != "raw_body")


@admin.register(SendBrake)
class SendBrakeAdmin(admin.ModelAdmin):
    """Sends held by the bounce and complaint brake: resume (held mail is queued again) or cancel."""

    list_display = ["send_key", "status", "sent", "bounced", "complained", "held_count", "held_at", "decided_by"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in SendBrake._meta.fields]
    actions = ["resume", "cancel"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Resume the selected sends (held mail is sent)"), permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[SendBrake]) -> None:
        resumed = 0
        for brake in queryset.filter(status=SendBrake.Status.HELD):
            resumed += send_resume(brake=brake, user=str(request.user))
        self.message_user(
            request, ngettext("%(n)d mail queued again.", "%(n)d mails queued again.", resumed) % {"n": resumed}
        )

    @admin.action(description=_("Cancel the held mail of the selected sends"), permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[SendBrake]) -> None:
        cancelled = sum(
            send_cancel(brake=brake, user=str(request.user)) for brake in queryset.filter(status=SendBrake.Status.HELD)
        )
        self.message_user(
            request, ngettext("%(n)d mail cancelled.", "%(n)d mails cancelled.", cancelled) % {"n": cancelled}
        )
