from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from cadence import announcement_admin  # noqa: F401  (registers the announcement admin)
from cadence.digest import silence_risk_topics
from cadence.enqueue import delivery_enqueue
from cadence.guard import silence_count, silent_schedules, welcome_overdue_schedules
from cadence.health.labels import reason_labels
from cadence.keys import welcome_resend_key
from cadence.kinds import Kind
from cadence.models import ContactHealth, ContentItem, ReminderRule, Schedule, WelcomeStep
from messaging.admin import ContactWithTimelineAdmin, TopicPreviewAdmin
from messaging.models import Delivery
from messaging.rendering import message_names
from messaging.services import delivery_create
from preferences.admin import CappedCountPaginator, ContactSearchMixin
from preferences.frequencies import get_frequency
from preferences.models import CadencePolicy, Contact, Topic, marketable_q
from preferences.policy import effective_frequency

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class SilenceFilter(admin.SimpleListFilter):
    title = _("silence")
    parameter_name = "silence"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("silent", _("silent")),
            ("welcome_overdue", _("welcome overdue")),
            ("tick_behind", _("due, but the tick is behind")),
        ]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        now = timezone.now()
        if self.value() == "silent":
            return queryset.filter(silent_schedules(now=now))
        if self.value() == "welcome_overdue":
            return queryset.filter(welcome_overdue_schedules(now=now))
        if self.value() == "tick_behind":
            # As the ops page counts it: active, due longer ago than OPS_OVERDUE_GRACE, mailable.
            grace = timedelta(seconds=settings.OPS_OVERDUE_GRACE)
            return queryset.filter(is_active=True, next_due_at__lt=now - grace).filter(
                contact__in=Contact.objects.marketable(now)
            )
        return queryset


class ContactSilenceFilter(admin.SimpleListFilter):
    """The people behind the silence counts of the dashboard and the ops page, on the contact list."""

    title = _("silence")
    parameter_name = "silence"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("silent", _("silent")),
            ("welcome_overdue", _("welcome overdue")),
            ("no_schedule", _("confirmed without a schedule")),
        ]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        now = timezone.now()
        if self.value() == "silent":
            return queryset.filter(Exists(Schedule.objects.filter(silent_schedules(now=now), pk=OuterRef("pk"))))
        if self.value() == "welcome_overdue":
            return queryset.filter(
                Exists(Schedule.objects.filter(welcome_overdue_schedules(now=now), pk=OuterRef("pk")))
            )
        if self.value() == "no_schedule":
            grace = timedelta(seconds=settings.OPS_OVERDUE_GRACE)
            active = Schedule.objects.filter(pk=OuterRef("pk"), is_active=True)
            return queryset.filter(marketable_q(now), confirmed_at__lt=now - grace).exclude(Exists(active))
        return queryset


@admin.register(Schedule)
class ScheduleAdmin(ContactSearchMixin, admin.ModelAdmin):
    list_display = ["contact", "is_active", "next_due_at", "last_sent_at", "welcome_step", "slot"]
    list_filter = [SilenceFilter, "is_active"]
    list_select_related = ["contact"]
    raw_id_fields = ["contact"]
    show_full_result_count = False
    paginator = CappedCountPaginator

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        counts = silence_count()
        if counts.silent or counts.welcome_overdue:
            messages.warning(
                request,
                _("Silent: %(silent)d, welcome overdue: %(welcome)d. The silence guard makes them due now.")
                % {"silent": counts.silent, "welcome": counts.welcome_overdue},
            )
        return super().changelist_view(request, extra_context)


def welcome_template_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in message_names(prefix="welcome")]


class WelcomeStepForm(forms.ModelForm):
    template = forms.ChoiceField(label=_("template"), choices=welcome_template_choices)

    class Meta:
        model = WelcomeStep
        fields = ["position", "delay", "template", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["template"].error_messages["invalid_choice"] = _(
            "“%(value)s” is not a message. The messages that exist: %(names)s."
        ) % {"value": "%(value)s", "names": ", ".join(message_names(prefix="welcome"))}


@admin.register(WelcomeStep)
class WelcomeStepAdmin(admin.ModelAdmin):
    form = WelcomeStepForm
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
class ContactHealthAdmin(ContactSearchMixin, admin.ModelAdmin):
    list_display = ["contact", "state", "reason_text", "state_since", "last_engaged_at", "computed_at"]
    list_filter = ["state"]
    list_select_related = ["contact"]
    raw_id_fields = ["contact"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    readonly_fields = ["reason_text"]

    @admin.display(description=_("reasons"))
    def reason_text(self, row: ContactHealth) -> str:
        return ", ".join(reason_labels(row.reasons))


def _short_date(moment: Any) -> str:
    """Return a list cell's date as YYYY-MM-DD in the current time zone (narrow columns), "-" for none."""
    return timezone.localtime(moment).strftime("%Y-%m-%d") if moment else "-"


def no_delivery_on_record(last_sent_at: Any) -> str:
    return _(
        "No delivery on record here; the schedule's last marketing mail was sent at %(at)s "
        "(before this log was kept, or its record was removed)."
    ) % {"at": timezone.localtime(last_sent_at).strftime("%Y-%m-%d %H:%M")}


class HealthFilter(admin.SimpleListFilter):
    title = _("health")
    parameter_name = "health"

    def lookups(self, request: HttpRequest, model_admin: object) -> list[tuple[str, StrOrPromise]]:
        return list(ContactHealth.State.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(health__state=self.value()) if self.value() else queryset


class MarketingContactAdmin(ContactWithTimelineAdmin):
    """The contact admin with what the cadence engine and messaging know: health, schedule, mail."""

    list_display = [
        *(name for name in ContactWithTimelineAdmin.list_display if name not in {"frequency", "created_at"}),
        "frequency_in_effect",
        "last_marketing_mail",
        "next_due",
        "silence",
        "health_state",
        "created_at",
    ]
    list_filter = [*ContactWithTimelineAdmin.list_filter, HealthFilter, ContactSilenceFilter]
    list_select_related = ["health", "schedule"]
    readonly_fields = [
        *ContactWithTimelineAdmin.readonly_fields,
        "health_summary",
        "schedule_summary",
        "recent_deliveries",
    ]
    actions = [*ContactWithTimelineAdmin.actions, "resend_welcome"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Annotate what the list shows per row: the policy's cap and whether the contact is silent."""
        now = timezone.now()
        policy = CadencePolicy.objects.filter(potential=OuterRef("potential"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                policy_max_frequency=policy.values("max_frequency")[:1],
                policy_welcome_only=policy.values("welcome_only")[:1],
                is_silent=Exists(Schedule.objects.filter(silent_schedules(now=now), pk=OuterRef("pk"))),
                is_welcome_overdue=Exists(
                    Schedule.objects.filter(welcome_overdue_schedules(now=now), pk=OuterRef("pk"))
                ),
            )
        )

    @admin.display(description=_("frequency in effect"))
    def frequency_in_effect(self, contact: Contact) -> SafeString | str:
        policies = {}
        welcome_only = getattr(contact, "policy_welcome_only", None)
        if welcome_only is not None:
            policies[contact.potential] = CadencePolicy(
                potential=contact.potential,
                max_frequency=getattr(contact, "policy_max_frequency", "") or "",
                welcome_only=welcome_only,
            )
        applied = effective_frequency(contact, policies)
        chosen = get_frequency(contact.frequency)
        if applied == chosen:
            return applied.label
        return format_html(
            "{} <small>({})</small>",
            applied.label,
            _("chose %(chosen)s; policy") % {"chosen": chosen.label.lower()},
        )

    @admin.display(description=_("last marketing mail"))
    def last_marketing_mail(self, contact: Contact) -> str:
        schedule = getattr(contact, "schedule", None)
        return _short_date(schedule.last_sent_at if schedule else None)

    @admin.display(description=_("next due"))
    def next_due(self, contact: Contact) -> str:
        schedule = getattr(contact, "schedule", None)
        return _short_date(schedule.next_due_at if schedule and schedule.is_active else None)

    @admin.display(description=_("silent / overdue"))
    def silence(self, contact: Contact) -> SafeString | str:
        if getattr(contact, "is_silent", False):
            return format_html('<strong class="errornote-inline">{}</strong>', _("silent"))
        if getattr(contact, "is_welcome_overdue", False):
            return format_html('<strong class="errornote-inline">{}</strong>', _("welcome overdue"))
        return "-"

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
        schedule = Schedule.objects.filter(contact=contact).first()
        return render_to_string(
            "admin/cadence/deliveries.html",
            {"deliveries": deliveries, "last_sent_at": schedule.last_sent_at if schedule else None},
        )

    @admin.display(description=_("mail timeline"))
    def timeline(self, contact: Contact) -> SafeString:
        """The timeline; without deliveries on record it says when the schedule last mailed, if it did."""
        schedule = Schedule.objects.filter(contact=contact).first() if contact.pk else None
        if schedule and schedule.last_sent_at and not contact.deliveries.exists():
            return format_html("<p>{}</p>", no_delivery_on_record(schedule.last_sent_at))
        return super().timeline(contact)

    @admin.action(description=_("Send the welcome mail again"), permissions=["change"])
    def resend_welcome(self, request: HttpRequest, queryset: QuerySet) -> None:
        stamp = timezone.now().strftime("%Y%m%d%H%M%S")
        queued = 0
        for contact in queryset.filter(status=Contact.Status.CONFIRMED, suppressed_at__isnull=True)[:1000]:
            if delivery_create(
                contact=contact,
                kind=Kind.WELCOME,
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


# Contact and Topic: registered here once, composed of the three apps' views (preferences' base,
# messaging's timeline and topic preview, cadence's schedule and health).
admin.site.register(Contact, MarketingContactAdmin)
admin.site.register(Topic, TopicPreviewAdmin)
# The admin index links to the marketing dashboard (its template extends the stock index).
admin.site.index_template = "admin/cadence/index.html"
