from __future__ import annotations

from django.contrib import admin

from cadence.models import Schedule


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["contact", "is_active", "next_due_at", "last_sent_at", "welcome_step"]
    list_filter = ["is_active"]
    raw_id_fields = ["contact"]
    show_full_result_count = False


# The index links to the ops page (cadence.ops_views.ops_page at /admin/ops/).
admin.site.index_template = "cadence/admin/index.html"
