from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from preferences.models import Contact


class Schedule(models.Model):
    """When a confirmed contact is next due for a marketing mail."""

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, primary_key=True, related_name="schedule")
    is_active = models.BooleanField(default=True)
    next_due_at = models.DateTimeField(_("next due at"))
    last_sent_at = models.DateTimeField(_("last marketing mail at"), null=True, blank=True)
    welcome_step = models.PositiveSmallIntegerField(_("welcome series step"), default=0)
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
