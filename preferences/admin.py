from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from preferences.models import ConsentEvent, Contact, SuppressionEntry, Topic
from preferences.services import address_hash


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


@admin.register(SuppressionEntry)
class SuppressionEntryAdmin(admin.ModelAdmin):
    """The suppression list: deleting an entry lets the address be mailed again."""

    list_display = ["created_at", "reason", "address_hash"]
    list_filter = ["reason"]
    search_fields = ["=address_hash"]
    show_full_result_count = False
    readonly_fields = ["address_hash", "reason", "created_at", "evidence"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """Let an address be searched for: it is hashed as the list keys it."""
        if "@" in search_term:
            return queryset.filter(address_hash=address_hash(search_term)), False
        return super().get_search_results(request, queryset, search_term)
