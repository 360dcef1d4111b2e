"""The background imports in the admin: read-only, with "queue again" for a job lost from the queue."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from preferences.import_jobs import import_jobs_requeue
from preferences.models import ImportJob


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["original_name", "status", "requested_by", "created_at", "started_at", "finished_at", "rows_seen"]
    list_filter = ["status"]
    actions = ["queue_again"]
    readonly_fields = [
        "original_name",
        "status",
        "requested_by",
        "skip_bad_rows",
        "invite",
        "created_at",
        "started_at",
        "finished_at",
        "rows_seen",
        "counts",
        "bad_count",
        "invited",
        "error",
    ]
    exclude = ["file_path", "bad_rows", "bytes_total", "bytes_done"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Queue again (imports lost from the queue)"), permissions=["change"])
    def queue_again(self, request: HttpRequest, queryset: QuerySet[ImportJob]) -> None:
        count = import_jobs_requeue(jobs=queryset)
        skipped = queryset.count() - count
        self.message_user(
            request,
            ngettext("%(n)d import queued again.", "%(n)d imports queued again.", count) % {"n": count},
            messages.SUCCESS,
        )
        if skipped:
            self.message_user(
                request,
                _("%(n)d not queued: only an import still queued whose file is kept can run again.") % {"n": skipped},
                messages.WARNING,
            )
