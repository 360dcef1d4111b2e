from __future__ import annotations

from django.contrib import admin

from messaging.models import Delivery


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "status", "esp_name", "sent_at", "attempts"]
    list_filter = ["status", "kind", "esp_name"]
    search_fields = ["=id", "=esp_message_id", "=contact__email"]
    raw_id_fields = ["contact"]
    show_full_result_count = False
    readonly_fields = [f.name for f in Delivery._meta.fields]
