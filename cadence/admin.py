from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from cadence.health_labels import reason_labels
from cadence.models import ContactHealth, ReminderRule, Schedule
from messaging.admin import ContactWithTimelineAdmin
from messaging.models import Delivery
from messaging.services import delivery_create
from messaging.tasks import enqueue_delivery
from preferences.admin import CappedCountPaginator
from preferences.models import Contact


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["contact", "is_active", "next_due_at", "last_sent_at", "welcome_step"]
    list_filter = ["is_active"]
    raw_id_fields = ["contact"]
    show_full_result_count = False


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

    def lookups(self, request: HttpRequest, model_admin: object) -> list[tuple[str, str]]:
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

    @admin.action(description=_("Send the welcome mail again"))
    def resend_welcome(self, request: HttpRequest, queryset: QuerySet) -> None:
        stamp = timezone.now().strftime("%Y%m%d%H%M%S")
        queued = 0
        for contact in queryset.filter(status=Contact.Status.CONFIRMED, suppressed_at__isnull=True)[:1000]:
            if delivery_create(
                contact=contact,
                kind=Delivery.Kind.WELCOME,
                template="welcome",
                idempotency_key=f"welcome:{contact.pk}:resend:{stamp}",
                enqueue=enqueue_delivery,
            ):
                queued += 1
        self.message_user(
            request, ngettext("%(n)d welcome mail queued.", "%(n)d welcome mails queued.", queued) % {"n": queued}
        )


admin.site.unregister(Contact)
admin.site.register(Contact, MarketingContactAdmin)
# The admin index links to the marketing dashboard (its template extends the stock index).
admin.site.index_template = "admin/cadence/index.html"
