from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from cadence import (
    announcement_admin,  # noqa: F401  (registers the announcement admin)
    brake_admin,  # noqa: F401  (registers the braked sends admin)
)
from cadence.digest import silence_risk_topics
from cadence.health_labels import reason_labels
from cadence.keys import welcome_resend_key
from cadence.models import ContactHealth, ContentItem, ReminderRule, Schedule, WelcomeStep
from cadence.sending import delivery_enqueue
from cadence.services import silence_count, silent_schedules, welcome_overdue_schedules
from messaging.admin import ContactWithTimelineAdmin
from messaging.models import Delivery
from messaging.services import delivery_create
from preferences.admin import CappedCountPaginator
from preferences.models import Contact

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


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


@admin.register(ReminderRule)
class ReminderRuleAdmin(admin.ModelAdmin):
    list_display = ["product_type", "event", "days_before", "template", "active"]
    list_editable = ["active"]
    list_filter = ["event", "active", "product_type"]


@admin.register(ContactHealth)
class ContactHealthAdmin(admin.ModelAdmin):
    list_display = ["contact", "state", "reason_text", "state_since", "last_engaged_at", "computed_at"]
    list_filter = ["state"]
    raw_id_fields = ["contact"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    readonly_fields = ["reason_text"]

    @admin.display(description=_("reasons"))
    def reason_text(self, row: ContactHealth) -> str:
        return ", ".join(reason_labels(row.reasons))


class HealthFilter(admin.SimpleListFilter):
    title = _("health")
    parameter_name = "health"

    def lookups(self, request: HttpRequest, model_admin: object) -> list[tuple[str, StrOrPromise]]:
        return list(ContactHealth.State.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(health__state=self.value()) if self.value() else queryset


class MarketingContactAdmin(ContactWithTimelineAdmin):
    """The contact admin with what the cadence engine and messaging know: health, schedule, mail."""

    list_display = [*ContactWithTimelineAdmin.list_display, "health_state"]
    list_filter = [*ContactWithTimelineAdmin.list_filter, HealthFilter]
    list_select_related = ["health"]
    readonly_fields = [
        *ContactWithTimelineAdmin.readonly_fields,
        "health_summary",
        "schedule_summary",
        "recent_deliveries",
    ]
    actions = [*ContactWithTimelineAdmin.actions, "resend_welcome"]

    @admin.display(description=_("health"))
    def health_state(self, contact: Contact) -> str:
        row = getattr(contact, "health", None)
        return row.get_state_display() if row else "-"

    @admin.display(description=_("relationship health"))
    def health_summary(self, contact: Contact) -> str:
        row = ContactHealth.objects.filter(contact=contact).first()
        return render_to_string(
            "admin/cadence/health_summary.html", {"row": row, "reasons": reason_labels(row.reasons) if row else []}
        )

    @admin.display(description=_("schedule"))
    def schedule_summary(self, contact: Contact) -> str:
        schedule = Schedule.objects.filter(contact=contact).first()
        return render_to_string("admin/cadence/schedule_summary.html", {"schedule": schedule})

    @admin.display(description=_("deliveries (latest 20)"))
    def recent_deliveries(self, contact: Contact) -> str:
        deliveries = Delivery.objects.filter(contact=contact).order_by("-created_at")[:20]
        return render_to_string("admin/cadence/deliveries.html", {"deliveries": deliveries})

    @admin.action(description=_("Send the welcome mail again"), permissions=["change"])
    def resend_welcome(self, request: HttpRequest, queryset: QuerySet) -> None:
        stamp = timezone.now().strftime("%Y%m%d%H%M%S")
        queued = 0
        for contact in queryset.filter(status=Contact.Status.CONFIRMED, suppressed_at__isnull=True)[:1000]:
            if delivery_create(
                contact=contact,
                kind=Delivery.Kind.WELCOME,
                template="welcome",
                idempotency_key=welcome_resend_key(contact.pk, stamp),
                marketing=True,
                queue=Delivery.Queue.WELCOME,
                enqueue=delivery_enqueue,
            ):
                queued += 1
        self.message_user(
            request, ngettext("%(n)d welcome mail queued.", "%(n)d welcome mails queued.", queued) % {"n": queued}
        )


admin.site.unregister(Contact)
admin.site.register(Contact, MarketingContactAdmin)
# The admin index links to the marketing dashboard (its template extends the stock index).
admin.site.index_template = "admin/cadence/index.html"
