"""The admin of sends held by the bounce and complaint brake: resume (held mail is enqueued again) or cancel."""

from __future__ import annotations

from functools import partial

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from cadence.enqueue import deliveries_enqueue_on_their_queues
from cadence.keys import ANNOUNCEMENT_SEND
from cadence.tasks import expand_announcement
from messaging.brake import send_cancel, send_resume
from messaging.models import SendBrake

ANNOUNCEMENT_SEND_PREFIX = ANNOUNCEMENT_SEND.split("{")[0]


@admin.register(SendBrake)
class SendBrakeAdmin(admin.ModelAdmin):
    """Sends held by the bounce and complaint brake: resume (held mail is queued again) or cancel."""

    list_display = ["send_key", "status", "sent", "bounced", "complained", "held_count", "held_at", "decided_by"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in SendBrake._meta.fields]
    actions = ["resume", "cancel"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Resume the selected sends (held mail is sent)"), permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[SendBrake]) -> None:
        resumed = 0
        for brake in queryset.filter(status=SendBrake.Status.HELD):
            resumed += send_resume(
                brake=brake, user=str(request.user), enqueue_batch=deliveries_enqueue_on_their_queues
            )
            announcement_id = brake.send_key.removeprefix(ANNOUNCEMENT_SEND_PREFIX)
            if brake.send_key.startswith(ANNOUNCEMENT_SEND_PREFIX) and announcement_id.isdigit():
                transaction.on_commit(partial(expand_announcement.delay, int(announcement_id)))
        self.message_user(
            request, ngettext("%(n)d mail queued again.", "%(n)d mails queued again.", resumed) % {"n": resumed}
        )

    @admin.action(description=_("Cancel the held mail of the selected sends"), permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[SendBrake]) -> None:
        cancelled = sum(
            send_cancel(brake=brake, user=str(request.user)) for brake in queryset.filter(status=SendBrake.Status.HELD)
        )
        self.message_user(
            request, ngettext("%(n)d mail cancelled.", "%(n)d mails cancelled.", cancelled) % {"n": cancelled}
        )
