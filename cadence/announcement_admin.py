"""The admin of announcements: draft, preview and test, count, confirm and send (now or at a chosen time),
follow the progress."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
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

from cadence.announcements import (
    announcement_audience,
    announcement_audience_breakdown,
    announcement_confirm,
    announcement_plan,
    announcement_preview,
    announcement_progress,
    announcement_resume,
    announcement_send_test,
)
from cadence.models import Announcement
from cadence.tasks import expand_announcement
from preferences.models import Locale


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "audience", "status", "audience_count", "created_count", "confirmed_at"]
    list_filter = ["status", "kind", "audience"]
    actions = ["confirm_and_send", "resume_sending"]
    fieldsets = [
        (None, {"fields": ["title", "kind", "delivery_mode"]}),
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
        test_url = reverse("admin:cadence_announcement_test", args=[obj.pk])
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
            path("<int:object_id>/confirm/", view, name="cadence_announcement_confirm"),
            path("<int:object_id>/test/", test, name="cadence_announcement_test"),
            *super().get_urls(),
        ]

    def has_send_permission(self, request: HttpRequest) -> bool:
        """Testing, confirming, sending and resuming mail out need `cadence.send_announcement`."""
        return request.user.has_perm("cadence.send_announcement")

    def test_send_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Send the announcement to one chosen address, in one or both languages (no delivery is recorded)."""
        if not self.has_send_permission(request):
            raise PermissionDenied
        announcement = get_object_or_404(Announcement, pk=object_id)
        if not self.has_view_permission(request, announcement):
            raise PermissionDenied
        change_url = reverse("admin:cadence_announcement_change", args=[announcement.pk])
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
        return TemplateResponse(request, "admin/cadence/announcement/test_send.html", context)

    @admin.display(description=_("will receive it"))
    def recipients(self, obj: Announcement) -> str:
        if obj.pk is None:
            return _("save the draft to count")
        if obj.status != Announcement.Status.DRAFT:
            return _("%(n)s counted at confirmation") % {"n": obj.audience_count}
        count = announcement_audience(obj).count()
        url = reverse("admin:cadence_announcement_confirm", args=[obj.pk])
        return format_html('{} <a class="button" href="{}">{}</a>', count, url, _("Confirm and send…"))

    @admin.display(description=_("progress"))
    def progress(self, obj: Announcement) -> str:
        if obj.pk is None or obj.status == Announcement.Status.DRAFT:
            return "-"
        counts = announcement_progress(obj)
        text = (
            _("queued %(queued)s · sending %(sending)s · sent %(sent)s · failed %(failed)s · skipped %(cancelled)s")
            % counts
        )
        if obj.is_marketing:
            text += " — " + (
                _(
                    "copies: waiting for their next mail %(copy_pending)s · on their way %(copy_riding)s · "
                    "delivered %(copy_delivered)s"
                )
                % counts
            )
            if obj.promised_by is not None:
                text += " — " + _("everyone with consent has it by %(date)s") % {
                    "date": date_format(timezone.localtime(obj.promised_by), "DATETIME_FORMAT")
                }
        return text

    @admin.action(description=_("Confirm and send the selected announcement…"), permissions=["send"])
    def confirm_and_send(self, request: HttpRequest, queryset: QuerySet[Announcement]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, _("Choose exactly one announcement to confirm."), messages.WARNING)
            return None
        return redirect("admin:cadence_announcement_confirm", queryset.get().pk)

    @admin.action(description=_("Resume sending (after a lost worker or broker)"), permissions=["send"])
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
        if not self.has_send_permission(request):
            raise PermissionDenied
        announcement = get_object_or_404(Announcement, pk=object_id)
        if not self.has_view_permission(request, announcement):
            raise PermissionDenied
        change_url = reverse("admin:cadence_announcement_change", args=[announcement.pk])
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
            **_plan_context(announcement),
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/cadence/announcement/confirm.html", context)


def _plan_context(announcement: Announcement) -> dict[str, object]:
    """Return what the confirmation page says will happen: per language now, in the next mail, never; and by
    when everyone with consent has it ("all within 92 days")."""
    now = timezone.now()
    start = max(now, announcement.scheduled_at or now)
    plan = announcement_plan(announcement, now=start)
    rows = [(language, plan.now[code], plan.next_mail[code], plan.never[code]) for code, language in Locale.choices]
    days = None
    if plan.promised_by is not None and plan.total("next_mail"):
        days = max(1, -(-(plan.promised_by - now) // timedelta(days=1)))
    return {
        "plan": plan,
        "plan_rows": rows,
        "plan_totals": (plan.total("now"), plan.total("next_mail"), plan.total("never")),
        "promised_days": days,
        "promised_by": plan.promised_by,
        "estimated": start > now,
    }


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
