from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from preferences.models import Contact

# The producers' names for their kinds of mail, filled by the producers when the apps are ready
# (cadence.apps): messaging shows them and never branches on a kind.
KIND_LABELS: dict[str, str | Promise] = {}


class Delivery(models.Model):
    """One mail to one contact. The idempotency key makes every send happen at most once."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")
        # Held by the bounce and complaint brake: the pipe claims only queued rows, so it waits.
        HELD = "held", _("held (send braked)")

    class ErrorClass(models.TextChoices):
        """Why a delivery did not (yet) go: what code branches on. `error` keeps the words for people."""

        NONE = "", _("none")
        TRANSIENT = "transient", _("transient (tried again)")
        PERMANENT = "permanent", _("refused by the ESP for good")
        RECIPIENT_REFUSED = "recipient_refused", _("recipient refused")
        RENDER_ERROR = "render_error", _("template could not be rendered")
        RETRIES_EXHAUSTED = "retries_exhausted", _("retries used up")
        LOST = "lost", _("lost (worker stopped while sending; replaced)")
        CANCELLED = "cancelled", _("cancelled")

    class Queue(models.TextChoices):
        WELCOME = "welcome", _("welcome (latency-sensitive)")
        BULK = "bulk", _("bulk")
        DEFAULT = "default", _("default")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("id"))
    # Indexed by `delivery_contact_created`, which leads with it: every write keeps one index fewer.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="deliveries", db_index=False, verbose_name=_("contact")
    )
    # The producer's label (cadence.kinds.Kind); messaging never branches on it.
    kind = models.CharField(max_length=24, verbose_name=_("kind"))
    template = models.CharField(max_length=100, verbose_name=_("template"))
    idempotency_key = models.CharField(max_length=200, unique=True, verbose_name=_("idempotency key"))
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, verbose_name=_("status"))
    # Set by the producer: marketing mail needs marketing consent at send time and carries List-Unsubscribe.
    marketing = models.BooleanField(_("marketing"), default=False)
    # The Celery queue the send task runs on.
    queue = models.CharField(_("queue"), max_length=16, choices=Queue.choices, default=Queue.BULK)
    context = models.JSONField(default=dict, blank=True, verbose_name=_("context"))
    esp_name = models.CharField(max_length=50, blank=True, verbose_name=_("ESP"))
    esp_message_id = models.CharField(max_length=255, blank=True, verbose_name=_("ESP message id"))
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("attempts"))
    error = models.TextField(blank=True, verbose_name=_("error"))
    error_class = models.CharField(
        _("error class"), max_length=24, choices=ErrorClass.choices, blank=True, default=ErrorClass.NONE
    )
    # Which batch claimed the row (a conditional update sets it; the claimer reads its rows back).
    claim_token = models.UUIDField(null=True, blank=True, editable=False, verbose_name=_("claim token"))
    # The send this mail belongs to, set by its producer ("announcement:<id>", "nurture:<date>",
    # "import:<id>"): the bounce and complaint brake holds the rest of a send that goes bad.
    send_key = models.CharField(_("send"), max_length=100, blank=True, default="")
    # What the ESP reported last about the mail (webhooks), the most telling event wins.
    feedback = models.CharField(_("feedback"), max_length=16, blank=True)
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
            # Looked up by equality only: no second, pattern-matching index as `db_index=True` adds.
            models.Index(fields=["esp_message_id"], name="delivery_esp_message_id"),
            models.Index(fields=["feedback"], name="delivery_feedback"),
            models.Index(fields=["status", "kind"], name="delivery_status_kind"),
            models.Index(fields=["send_key", "status"], name="delivery_send_status", condition=~Q(send_key="")),
        ]

    def __str__(self) -> str:
        return f"{self.kind_label} {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def kind_label(self) -> str:
        """Return the producer's name for this kind of mail, in the active language."""
        return str(KIND_LABELS.get(self.kind, self.kind))


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


class DeliveryMonthlyCount(models.Model):
    """Deliveries per month, kind and status that the retention prune removed, so totals stay right."""

    month = models.DateField(_("month"))
    kind = models.CharField(_("kind"), max_length=24)
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

    id = models.BigAutoField(primary_key=True, verbose_name=_("id"))
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
