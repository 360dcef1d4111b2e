from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from preferences.models import Contact


class Delivery(models.Model):
    """One mail to one contact. The idempotency key makes every send happen at most once."""

    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation", _("confirmation")
        ALREADY_SUBSCRIBED = "already_subscribed", _("already subscribed")
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

    # Kinds that need marketing consent and carry List-Unsubscribe.
    MARKETING_KINDS = frozenset({Kind.WELCOME, Kind.NURTURE, Kind.REENGAGEMENT})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="deliveries")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    template = models.CharField(max_length=100)
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    context = models.JSONField(default=dict, blank=True)
    esp_name = models.CharField(max_length=50, blank=True)
    esp_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    # Which batch claimed the row (a conditional update sets it; the claimer reads its rows back).
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    # What the ESP reported last about the mail (webhooks), the most telling event wins.
    feedback = models.CharField(_("feedback"), max_length=16, blank=True, db_index=True)
    feedback_at = models.DateTimeField(_("feedback at"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        indexes = [
            models.Index(fields=["contact", "created_at"], name="delivery_contact_created"),
            models.Index(fields=["status", "kind"], name="delivery_status_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"

    @property
    def is_marketing(self) -> bool:
        return self.kind in self.MARKETING_KINDS


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

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="events")
    # Denormalised from the delivery: a contact's timeline is one indexed query.
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="delivery_events")
    esp_name = models.CharField(max_length=50)
    # The ESP's event id, or a hash of the raw event where the ESP gives none.
    event_id = models.CharField(max_length=255)
    type = models.CharField(_("event"), max_length=16, choices=Type.choices)
    esp_type = models.CharField(_("ESP event"), max_length=64, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"), db_index=True)
    received_at = models.DateTimeField(default=timezone.now)
    description = models.TextField(blank=True)
    click_url = models.URLField(max_length=2000, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("delivery event")
        verbose_name_plural = _("delivery events")
        ordering = ["occurred_at", "id"]
        constraints = [models.UniqueConstraint(fields=["esp_name", "event_id"], name="delivery_event_unique_per_esp")]
        indexes = [models.Index(fields=["contact", "occurred_at"], name="delivery_event_contact_time")]

    def __str__(self) -> str:
        return f"{self.type} {self.occurred_at:%Y-%m-%d %H:%M}"
