from __future__ import annotations

from django.contrib import admin

from cadence.models import ReminderRule, Schedule


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["contact", "is_active", "next_due_at", "last_sent_at", "welcome_step"]
    list_filter = ["is_active"]
    raw_id_fields = ["contact"]
    show_full_result_count = False


@admin.register(ReminderRule)
class ReminderRuleAdmin(admin.ModelAdmin):
    list_display = ["product_type", "event", "days_before", "template", "active"]
    list_editable = ["active"]
    list_filter = ["event", "active", "product_type"]


# The index links to the ops page (cadence.ops_views.ops_page at /admin/ops/).
admin.site.index_template = "cadence/admin/index.html"
