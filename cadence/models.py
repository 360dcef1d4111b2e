from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from preferences.models import Contact, Locale, Topic


class Schedule(models.Model):
    """When a confirmed contact is next due for a marketing mail."""

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, primary_key=True, related_name="schedule")
    is_active = models.BooleanField(default=True)
    next_due_at = models.DateTimeField(_("next due at"))
    last_sent_at = models.DateTimeField(_("last marketing mail at"), null=True, blank=True)
    welcome_step = models.PositiveSmallIntegerField(_("welcome series step"), default=0)
    # Counts the claims; with the contact and kind it makes the unique key of each mail.
    slot = models.PositiveIntegerField(_("slot"), default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")
        indexes = [
            models.Index(fields=["next_due_at"], name="schedule_active_due", condition=Q(is_active=True)),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} due {self.next_due_at:%Y-%m-%d %H:%M}"


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

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="content_items")
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

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="content_receipts")
    item = models.ForeignKey(ContentItem, on_delete=models.CASCADE, related_name="receipts")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("content receipt")
        verbose_name_plural = _("content receipts")
        constraints = [models.UniqueConstraint(fields=["contact", "item"], name="receipt_contact_item")]

    def __str__(self) -> str:
        return f"{self.contact_id} received {self.item_id}"
