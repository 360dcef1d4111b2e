from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cadence.health.rules import State as HealthState
from preferences.models import Contact, Locale, Topic


class Schedule(models.Model):
    """When a confirmed contact is next due for a marketing mail."""

    contact = models.OneToOneField(
        Contact, on_delete=models.CASCADE, primary_key=True, related_name="schedule", verbose_name=_("contact")
    )
    is_active = models.BooleanField(default=True, verbose_name=_("active"))
    next_due_at = models.DateTimeField(_("next due at"))
    last_sent_at = models.DateTimeField(_("last marketing mail at"), null=True, blank=True)
    welcome_step = models.PositiveSmallIntegerField(_("welcome series step"), default=0)
    # Counts the claims; with the contact and kind it makes the unique key of each mail.
    slot = models.PositiveIntegerField(_("slot"), default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")
        # The admin pages that are no model's list hold their permissions here (preferences/roles.py).
        permissions = [
            ("view_ops", "Can see the operations page"),
            ("view_dashboard", "Can see the marketing dashboard"),
        ]
        indexes = [
            models.Index(fields=["next_due_at"], name="schedule_active_due", condition=Q(is_active=True)),
        ]

    def __str__(self) -> str:
        return f"{self.contact} due {self.next_due_at:%Y-%m-%d %H:%M}"


class ReminderRule(models.Model):
    """When to remind holders of a product type of a renewal or end date (a service message)."""

    class Event(models.TextChoices):
        RENEWAL = "renewal", _("renewal date")
        END = "end", _("end date")

    class Template(models.TextChoices):
        RENEWAL = "reminder_renewal", _("renewal reminder")
        END = "reminder_end", _("end-date reminder")

    product_type = models.SlugField(_("product type"), max_length=50)
    event = models.CharField(_("event"), max_length=16, choices=Event.choices)
    days_before = models.PositiveSmallIntegerField(_("days before"))
    template = models.CharField(_("template"), max_length=100, choices=Template.choices, blank=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("reminder rule")
        verbose_name_plural = _("reminder rules")
        ordering = ["product_type", "event", "-days_before"]
        constraints = [
            models.UniqueConstraint(fields=["product_type", "event", "days_before"], name="reminder_rule_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.product_type}: {self.get_event_display()} -{self.days_before}d"

    @property
    def date_field(self) -> str:
        """Return the Product field this rule counts back from."""
        return "ends_on" if self.event == self.Event.END else "renews_on"

    @property
    def template_name(self) -> str:
        """Return the message template; blank means the event's own."""
        return self.template or (self.Template.END if self.event == self.Event.END else self.Template.RENEWAL)


class ContactHealth(models.Model):
    """The health of one relationship, recomputed in batches and on events (see cadence.health.services)."""

    State = HealthState

    contact = models.OneToOneField(
        Contact, on_delete=models.CASCADE, primary_key=True, related_name="health", verbose_name=_("contact")
    )
    state = models.CharField(_("health"), max_length=8, choices=State.choices, default=State.HEALTHY)
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    state_since = models.DateTimeField(_("in this state since"), default=timezone.now)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)
    # Engagement, filled by the delivery webhooks through cadence.health.services.health_record_event.
    last_engaged_at = models.DateTimeField(_("last open or click"), null=True, blank=True)
    bounce_count = models.PositiveIntegerField(_("bounces"), default=0)
    last_bounce_at = models.DateTimeField(_("last bounce"), null=True, blank=True)
    complained_at = models.DateTimeField(_("complained at"), null=True, blank=True)
    # The rules' own memory: when a re-engagement mail was queued, how far the sunset went.
    reengaged_at = models.DateTimeField(_("re-engagement mail queued at"), null=True, blank=True)
    sunset_stage = models.PositiveSmallIntegerField(_("sunset stage"), default=0)
    sunset_at = models.DateTimeField(_("sunset step at"), null=True, blank=True)

    class Meta:
        verbose_name = _("relationship health")
        verbose_name_plural = _("relationship health")
        indexes = [models.Index(fields=["state", "contact"], name="health_state_contact")]

    def __str__(self) -> str:
        return f"{self.contact} {self.get_state_display()}"


class WelcomeStep(models.Model):
    """One mail of the welcome series, sent `delay` after confirmation. The first one goes at once."""

    position = models.PositiveSmallIntegerField(_("position"), unique=True)
    delay = models.DurationField(_("delay after confirmation"), default=timedelta)
    template = models.CharField(
        _("template"), max_length=100, help_text=_("Name of a message in messaging/email/, e.g. welcome_expect.")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["position"]
        verbose_name = _("welcome step")
        verbose_name_plural = _("welcome series")

    def __str__(self) -> str:
        return f"{self.position}: {self.template} (+{self.delay})"


class ContentItem(models.Model):
    """A piece of nurture content for one topic in one language."""

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="content_items", verbose_name=_("topic"))
    language = models.CharField(_("language"), max_length=2, choices=Locale.choices)
    title = models.CharField(_("title"), max_length=200)
    summary = models.TextField(_("summary"), blank=True)
    url = models.URLField(_("link"), blank=True)
    body = models.TextField(_("body"), blank=True, help_text=_("Used when there is no link."))
    published_at = models.DateTimeField(_("published at"), default=timezone.now)
    evergreen = models.BooleanField(
        _("evergreen"), default=False, help_text=_("Still worth reading later; used when nothing new is left.")
    )

    class Meta:
        ordering = ["-published_at"]
        verbose_name = _("content item")
        verbose_name_plural = _("content items")
        indexes = [models.Index(fields=["topic", "language", "-published_at"], name="content_topic_lang_pub")]

    def __str__(self) -> str:
        return self.title


class ContentReceipt(models.Model):
    """That a contact received a content item in a nurture mail, so it is not sent again."""

    # Indexed by `receipt_contact_item`, which leads with it.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="content_receipts", db_index=False, verbose_name=_("contact")
    )
    item = models.ForeignKey(
        ContentItem, on_delete=models.CASCADE, related_name="receipts", verbose_name=_("content item")
    )
    received_at = models.DateTimeField(default=timezone.now, verbose_name=_("received at"))

    class Meta:
        verbose_name = _("content receipt")
        verbose_name_plural = _("content receipts")
        constraints = [models.UniqueConstraint(fields=["contact", "item"], name="receipt_contact_item")]

    def __str__(self) -> str:
        return f"{self.contact} received {self.item}"


class Announcement(models.Model):
    """A one-off message from marketers to an audience, sent through the bulk pipeline."""

    class Kind(models.TextChoices):
        SERVICE = "service", _("service (every reachable address, whatever the marketing consent)")
        MARKETING = "marketing", _("marketing (needs marketing consent)")

    class Audience(models.TextChoices):
        ALL_CUSTOMERS = "all_customers", _("all customers")
        ALL_CONTACTS = "all_contacts", _("all contacts")
        SEGMENT = "segment", _("a segment")

    class Lifecycle(models.TextChoices):
        PROSPECT = "prospect", _("prospects (no share of customer)")
        CUSTOMER = "customer", _("customers")

    class DeliveryMode(models.TextChoices):
        # Only for marketing announcements: a service announcement goes to every recipient at once.
        CADENCE_ALLOWS = "cadence_allows", _("as soon as each person's cadence allows")
        NEXT_MAIL = "next_mail", _("in each person's next mail")

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        CONFIRMED = "confirmed", _("confirmed, waiting to start")
        SENDING = "sending", _("sending")
        DONE = "done", _("done")

    title = models.CharField(_("title (internal)"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.SERVICE)
    subject_en = models.CharField(_("subject (English)"), max_length=200)
    subject_nl = models.CharField(_("subject (Dutch)"), max_length=200)
    body_en = models.TextField(_("body (English)"))
    body_nl = models.TextField(_("body (Dutch)"))
    delivery_mode = models.CharField(
        _("delivery (marketing only)"),
        max_length=16,
        choices=DeliveryMode.choices,
        default=DeliveryMode.CADENCE_ALLOWS,
        help_text=_(
            "In each person's next mail: it leads their next mail from us, no extra mail. As soon as each "
            "person's cadence allows: now to those whose last mail is at least one interval ago, to everyone "
            "else at their next slot instead of that mail."
        ),
    )
    audience = models.CharField(_("audience"), max_length=16, choices=Audience.choices, default=Audience.ALL_CUSTOMERS)
    segment_potential = models.CharField(
        _("segment: potential"), max_length=8, choices=Contact.Potential.choices, blank=True
    )
    segment_lifecycle = models.CharField(_("segment: lifecycle"), max_length=16, choices=Lifecycle.choices, blank=True)
    segment_topic = models.ForeignKey(
        "preferences.Topic", verbose_name=_("segment: topic"), on_delete=models.PROTECT, null=True, blank=True
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    scheduled_at = models.DateTimeField(
        _("send at"), null=True, blank=True, help_text=_("Empty: sending starts as soon as it is confirmed.")
    )
    audience_count = models.PositiveIntegerField(_("recipients counted at confirmation"), null=True, blank=True)
    created_count = models.PositiveIntegerField(_("deliveries created"), default=0)
    # Keyset cursor: the last contact id expanded, so an interrupted expansion resumes where it stopped.
    expanded_through = models.UUIDField(
        null=True, blank=True, editable=False, verbose_name=_("expanded through (contact id)")
    )
    # The latest next slot of the audience at confirmation: by then everyone with consent has it.
    promised_by = models.DateTimeField(_("everyone has it by"), null=True, blank=True)
    confirmed_by = models.CharField(_("confirmed by"), max_length=150, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    expanded_at = models.DateTimeField(_("audience expanded at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        # The table keeps the name it had when the model lived in messaging.
        db_table = "messaging_announcement"
        verbose_name = _("announcement")
        verbose_name_plural = _("announcements")
        ordering = ["-created_at"]
        permissions = [("send_announcement", "Can test, confirm and send an announcement")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_marketing(self) -> bool:
        return self.kind == self.Kind.MARKETING

    def subject(self, locale: str) -> str:
        return self.subject_nl if locale == "nl" else self.subject_en

    def body(self, locale: str) -> str:
        return self.body_nl if locale == "nl" else self.body_en


class AnnouncementRecipient(models.Model):
    """One person's copy of a marketing announcement: waiting for a mail to ride in, riding in one, or delivered.

    Made when the audience is expanded; the unique key makes it one copy per person. A copy that waits
    is carried by the person's next marketing mail (`cadence.batch`); `delivered_in` is the delivery
    that carries it (a mail of its own, or the person's next mail).
    """

    class State(models.TextChoices):
        PENDING = "pending", _("waiting for the person's next mail")
        RIDING = "riding", _("in a mail on its way")
        DELIVERED = "delivered", _("delivered")

    announcement = models.ForeignKey(
        Announcement, on_delete=models.CASCADE, related_name="recipients", verbose_name=_("announcement")
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="announcement_copies", verbose_name=_("contact")
    )
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.PENDING)
    delivered_in = models.UUIDField(_("delivered in (delivery id)"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("announcement recipient")
        verbose_name_plural = _("announcement recipients")
        constraints = [
            models.UniqueConstraint(fields=["announcement", "contact"], name="announcement_recipient_once"),
        ]
        indexes = [
            models.Index(fields=["contact"], name="announcement_copy_open", condition=~Q(state="delivered")),
            models.Index(fields=["delivered_in"], name="announcement_copy_carrier"),
        ]

    def __str__(self) -> str:
        return f"{self.announcement} -> {self.contact}: {self.get_state_display()}"
