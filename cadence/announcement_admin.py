"""The admin of announcements: draft, count, confirm and send, follow the progress."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from cadence.announcements import (
    announcement_audience,
    announcement_confirm,
    announcement_progress,
    announcement_resume,
)
from cadence.tasks import expand_announcement
from messaging.models import Announcement


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "audience", "status", "audience_count", "created_count", "confirmed_at"]
    list_filter = ["status", "kind", "audience"]
    actions = ["confirm_and_send", "resume_sending"]
    fieldsets = [
        (None, {"fields": ["title", "kind"]}),
        (_("Message"), {"fields": ["subject_en", "body_en", "subject_nl", "body_nl"]}),
        (_("Audience"), {"fields": ["audience", "segment_potential", "segment_lifecycle", "segment_topic"]}),
        (
            _("Sending"),
            {"fields": ["status", "recipients", "progress", "audience_count", "created_count", "confirmed_by"]},
        ),
    ]
    readonly_fields = ["status", "recipients", "progress", "audience_count", "created_count", "confirmed_by"]

    def get_readonly_fields(self, request: HttpRequest, obj: Announcement | None = None) -> list[str]:
        if obj is not None and obj.status != Announcement.Status.DRAFT:
            # Once confirmed, what was counted is what goes out.
            return [f.name for f in Announcement._meta.fields if f.editable] + self.readonly_fields
        return self.readonly_fields

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.confirm_view)
        return [path("<int:object_id>/confirm/", view, name="messaging_announcement_confirm"), *super().get_urls()]

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
                self.message_user(
                    request,
                    _("Confirmed: sending to %(n)s recipients.") % {"n": announcement.audience_count},
                    messages.SUCCESS,
                )
            return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Send this announcement?"),
            "announcement": announcement,
            "count": announcement_audience(announcement).count(),
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/messaging/announcement/confirm.html", context)
