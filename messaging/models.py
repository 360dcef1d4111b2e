from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from preferences.models import Contact


class Delivery(models.Model):
    """One mail to one contact. The idempotency key makes every send happen at most once."""

    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation", _("confirmation")
        ALREADY_SUBSCRIBED = "already_subscribed", _("already subscribed")
        LINK_REQUEST = "link_request", _("requested preference link")
        WELCOME = "welcome", _("welcome series")
        NURTURE = "nurture", _("nurture")
        REENGAGEMENT = "reengagement", _("re-engagement")
        REMINDER = "reminder", _("service reminder")
        ANNOUNCEMENT = "announcement", _("announcement")

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")
        # Held by the bounce and complaint brake: the pipe claims only queued rows, so it waits.
        HELD = "held", _("held (send braked)")

    class Queue(models.TextChoices):
        WELCOME = "welcome", _("welcome (latency-sensitive)")
        BULK = "bulk", _("bulk")
        DEFAULT = "default", _("default")

    # Kinds of the cadence engine that need marketing consent (the producer sets `marketing`).
    MARKETING_KINDS = frozenset({Kind.WELCOME, Kind.NURTURE, Kind.REENGAGEMENT})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("id"))
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("contact"))
    kind = models.CharField(max_length=24, choices=Kind.choices, verbose_name=_("kind"))
    template = models.CharField(max_length=100, verbose_name=_("template"))
    idempotency_key = models.CharField(max_length=200, unique=True, verbose_name=_("idempotency key"))
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, verbose_name=_("status"))
    # Set by the producer: marketing mail needs marketing consent at send time and carries List-Unsubscribe.
    marketing = models.BooleanField(_("marketing"), default=False)
    # The Celery queue the send task runs on.
    queue = models.CharField(_("queue"), max_length=16, choices=Queue.choices, default=Queue.BULK)
    context = models.JSONField(default=dict, blank=True, verbose_name=_("context"))
    esp_name = models.CharField(max_length=50, blank=True, verbose_name=_("ESP"))
    esp_message_id = models.CharField(max_length=255, blank=True, db_index=True, verbose_name=_("ESP message id"))
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("attempts"))
    error = models.TextField(blank=True, verbose_name=_("error"))
    # Which batch claimed the row (a conditional update sets it; the claimer reads its rows back).
    claim_token = models.UUIDField(null=True, blank=True, editable=False, verbose_name=_("claim token"))
    # The send this mail belongs to, set by its producer ("announcement:<id>", "nurture:<date>",
    # "import:<id>"): the bounce and complaint brake holds the rest of a send that goes bad.
    send_key = models.CharField(_("send"), max_length=100, blank=True, default="")
    # What the ESP reported last about the mail (webhooks), the most telling event wins.
    feedback = models.CharField(_("feedback"), max_length=16, blank=True, db_index=True)
    feedback_at = models.DateTimeField(_("feedback at"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True, verbose_name=_("created at"))
    claimed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("claimed at"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        indexes = [
            models.Index(fields=["contact", "created_at"], name="delivery_contact_created"),
            models.Index(fields=["status", "kind"], name="delivery_status_kind"),
            models.Index(fields=["send_key", "status"], name="delivery_send_status", condition=~Q(send_key="")),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_marketing(self) -> bool:
        """Return whether the mail needs marketing consent and carries List-Unsubscribe."""
        return self.marketing


class DeliveryEvent(models.Model):
    """One event an ESP reported about a delivery (webhook), de-duplicated on the ESP's event id."""

    class Type(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENT = "sent", _("sent")
        DELIVERED = "delivered", _("delivered")
        DEFERRED = "deferred", _("deferred")
        SOFT_BOUNCED = "soft_bounced", _("soft bounce")
        BOUNCED = "bounced", _("bounced")
        REJECTED = "rejected", _("rejected")
        FAILED = "failed", _("failed")
        COMPLAINED = "complained", _("complained")
        OPENED = "opened", _("opened")
        CLICKED = "clicked", _("clicked")
        UNSUBSCRIBED = "unsubscribed", _("unsubscribed")
        OTHER = "other", _("other")

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="events", verbose_name=_("delivery"))
    # Denormalised from the delivery: a contact's timeline is one indexed query.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="delivery_events", verbose_name=_("contact")
    )
    esp_name = models.CharField(max_length=50, verbose_name=_("ESP"))
    # The ESP's event id, or a hash of the raw event where the ESP gives none.
    event_id = models.CharField(max_length=255, verbose_name=_("ESP event id"))
    type = models.CharField(_("event"), max_length=16, choices=Type.choices)
    esp_type = models.CharField(_("ESP event"), max_length=64, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"), db_index=True)
    received_at = models.DateTimeField(default=timezone.now, verbose_name=_("received at"))
    description = models.TextField(blank=True, verbose_name=_("description"))
    click_url = models.URLField(max_length=2000, blank=True, verbose_name=_("clicked link"))
    detail = models.JSONField(default=dict, blank=True, verbose_name=_("details"))

    class Meta:
        verbose_name = _("delivery event")
        verbose_name_plural = _("delivery events")
        ordering = ["occurred_at", "id"]
        constraints = [models.UniqueConstraint(fields=["esp_name", "event_id"], name="delivery_event_unique_per_esp")]
        indexes = [models.Index(fields=["contact", "occurred_at"], name="delivery_event_contact_time")]

    def __str__(self) -> str:
        return f"{self.type} {self.occurred_at:%Y-%m-%d %H:%M}"


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
    confirmed_by = models.CharField(_("confirmed by"), max_length=150, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    expanded_at = models.DateTimeField(_("audience expanded at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("announcement")
        verbose_name_plural = _("announcements")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_marketing(self) -> bool:
        return self.kind == self.Kind.MARKETING

    def subject(self, locale: str) -> str:
        return self.subject_nl if locale == "nl" else self.subject_en

    def body(self, locale: str) -> str:
        return self.body_nl if locale == "nl" else self.body_en


class DeliveryMonthlyCount(models.Model):
    """Deliveries per month, kind and status that the retention prune removed, so totals stay right."""

    month = models.DateField(_("month"))
    kind = models.CharField(_("kind"), max_length=24, choices=Delivery.Kind.choices)
    status = models.CharField(_("status"), max_length=16, choices=Delivery.Status.choices)
    count = models.PositiveBigIntegerField(_("count"), default=0)

    class Meta:
        verbose_name = _("pruned deliveries per month")
        verbose_name_plural = _("pruned deliveries per month")
        constraints = [
            models.UniqueConstraint(fields=["month", "kind", "status"], name="delivery_monthly_count_unique")
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.kind} {self.status}: {self.count}"


class SendBrake(models.Model):
    """A send whose hard-bounce or complaint rate passed its threshold: the rest of it is held."""

    class Status(models.TextChoices):
        HELD = "held", _("held")
        RESUMED = "resumed", _("resumed")
        CANCELLED = "cancelled", _("cancelled")

    send_key = models.CharField(_("send"), max_length=100, unique=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.HELD)
    sent = models.PositiveIntegerField(_("sent in the window"), default=0)
    bounced = models.PositiveIntegerField(_("hard bounces"), default=0)
    complained = models.PositiveIntegerField(_("complaints"), default=0)
    held_count = models.PositiveIntegerField(_("mails held"), default=0)
    held_at = models.DateTimeField(_("held at"), default=timezone.now)
    decided_by = models.CharField(_("decided by"), max_length=150, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("braked send")
        verbose_name_plural = _("braked sends")
        ordering = ["-held_at"]

    def __str__(self) -> str:
        return self.send_key


class EventPost(models.Model):
    """One authenticated ESP webhook post, stored raw as it came and processed later in batches.

    Rows are only added by the web (one INSERT per post) and moved from `new` to `processed` or
    `quarantined` by the processor (messaging.intake); the body is never changed.
    """

    class State(models.TextChoices):
        NEW = "new", _("new")
        PROCESSED = "processed", _("processed")
        QUARANTINED = "quarantined", _("quarantined (could not be parsed)")

    class Kind(models.TextChoices):
        TRACKING = "tracking", _("tracking")
        INBOUND = "inbound", _("inbound")

    id = models.BigAutoField(primary_key=True)
    # The ESP of the URL it came through ("postmark", "amazon_ses"): the only ESP it may speak for.
    esp = models.CharField(_("ESP"), max_length=32)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.TRACKING)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    body = models.BinaryField(_("body"))
    # What anymail's parser reads besides the body: content type, path, host, the ESP's own headers
    # (never the credentials).
    meta = models.JSONField(_("request headers"), default=dict)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.NEW)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    events = models.PositiveIntegerField(_("events"), default=0)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("ESP event post")
        verbose_name_plural = _("ESP event posts")
        permissions = [("view_event_post_body", _("Can read the raw body of ESP event posts"))]
        indexes = [
            # The processor's claim and the intake lag read only the unprocessed ones.
            models.Index(fields=["id"], name="event_post_new", condition=Q(state="new")),
            models.Index(fields=["received_at"], name="event_post_quarantined", condition=Q(state="quarantined")),
        ]

    def __str__(self) -> str:
        return f"{self.esp} {self.received_at:%Y-%m-%d %H:%M:%S} {self.state}"
