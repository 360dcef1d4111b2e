from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from preferences.models import ConsentEvent, Contact, Topic


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ["slug", "name_en", "name_nl", "is_active", "position"]
    list_editable = ["is_active", "position"]
    prepopulated_fields = {"slug": ["name_en"]}


class ConsentEventInline(admin.TabularInline):
    model = ConsentEvent
    extra = 0
    can_delete = False
    fields = ["occurred_at", "kind", "source", "ip_address", "wording_version", "before", "after"]
    readonly_fields = fields
    ordering = ["-occurred_at"]

    def has_add_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["email", "status", "frequency", "locale", "share_of_customer", "potential", "created_at"]
    list_filter = ["status", "locale", "potential", "frequency"]
    search_fields = ["=email", "=external_id"]
    show_full_result_count = False
    readonly_fields = ["id", "created_at", "updated_at", "confirmed_at", "unsubscribed_at", "suppressed_at"]
    filter_horizontal = ["topics"]
    inlines = [ConsentEventInline]


@admin.register(ConsentEvent)
class ConsentEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "contact", "kind", "source", "wording_version"]
    list_filter = ["kind"]
    list_select_related = ["contact"]
    show_full_result_count = False
    raw_id_fields = ["contact"]

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False
