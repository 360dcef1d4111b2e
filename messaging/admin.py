from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from messaging.models import Delivery
from messaging.preview import PREVIEW_TEMPLATES, find_contact, preview_message
from preferences.admin import TopicAdmin
from preferences.models import Topic


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "status", "esp_name", "sent_at", "attempts"]
    list_filter = ["status", "kind", "esp_name"]
    search_fields = ["=id", "=esp_message_id", "=contact__email"]
    raw_id_fields = ["contact"]
    show_full_result_count = False
    readonly_fields = [f.name for f in Delivery._meta.fields]


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
