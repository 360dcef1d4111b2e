from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cadence.digest import silence_risk_topics
from cadence.models import ContentItem, Schedule, WelcomeStep
from cadence.services import silence_count, silent_schedules, welcome_overdue_schedules


class SilenceFilter(admin.SimpleListFilter):
    title = _("silence")
    parameter_name = "silence"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("silent", _("silent")), ("welcome_overdue", _("welcome overdue"))]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        now = timezone.now()
        if self.value() == "silent":
            return queryset.filter(silent_schedules(now=now))
        if self.value() == "welcome_overdue":
            return queryset.filter(welcome_overdue_schedules(now=now))
        return queryset


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["contact", "is_active", "next_due_at", "last_sent_at", "welcome_step", "slot"]
    list_filter = [SilenceFilter, "is_active"]
    raw_id_fields = ["contact"]
    show_full_result_count = False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        counts = silence_count()
        if counts.silent or counts.welcome_overdue:
            messages.warning(
                request,
                _("Silent: %(silent)d, welcome overdue: %(welcome)d. The silence guard makes them due now.")
                % {"silent": counts.silent, "welcome": counts.welcome_overdue},
            )
        return super().changelist_view(request, extra_context)


@admin.register(WelcomeStep)
class WelcomeStepAdmin(admin.ModelAdmin):
    list_display = ["position", "template", "delay", "is_active"]
    list_editable = ["template", "delay", "is_active"]
    ordering = ["position"]


class SilenceRiskFilter(admin.SimpleListFilter):
    title = _("silence risk")
    parameter_name = "silence_risk"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("topics without fresh or evergreen content"))]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "yes":
            return queryset.filter(topic__in=silence_risk_topics())
        return queryset


@admin.register(ContentItem)
class ContentItemAdmin(admin.ModelAdmin):
    list_display = ["title", "topic", "language", "published_at", "evergreen"]
    list_filter = [SilenceRiskFilter, "topic", "language", "evergreen"]
    search_fields = ["title", "summary"]
    date_hierarchy = "published_at"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        risky = list(silence_risk_topics())
        if risky:
            messages.warning(
                request,
                _("Silence risk: no fresh or evergreen content in every language for %(topics)s.")
                % {"topics": ", ".join(topic.name_en for topic in risky)},
            )
        return super().changelist_view(request, extra_context)
