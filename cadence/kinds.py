"""The kinds of mail cadence produces: a label on each delivery, for people and reports.

Messaging never branches on a kind; what the pipe needs (marketing or service, which queue, which
send) is set on the delivery by its producer.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    CONFIRMATION = "confirmation", _("confirmation")
    ALREADY_SUBSCRIBED = "already_subscribed", _("already subscribed")
    LINK_REQUEST = "link_request", _("requested preference link")
    WELCOME = "welcome", _("welcome series")
    NURTURE = "nurture", _("nurture")
    REENGAGEMENT = "reengagement", _("re-engagement")
    REMINDER = "reminder", _("service reminder")
    ANNOUNCEMENT = "announcement", _("announcement")
