from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from preferences.data_rights import contact_erase, contact_export
from preferences.models import ConsentEvent, Contact, Product, SuppressionEntry, Topic, address_hash
from preferences.views import export_response


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


class ProductInline(admin.TabularInline):
    model = Product
    extra = 0
    fields = ["name", "product_type", "started_on", "renews_on", "ends_on", "external_id"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "product_type", "contact", "started_on", "renews_on", "ends_on"]
    list_filter = ["product_type"]
    search_fields = ["=external_id", "=contact__email"]
    raw_id_fields = ["contact"]
    date_hierarchy = "renews_on"
    show_full_result_count = False


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["email", "status", "frequency", "locale", "share_of_customer", "potential", "created_at"]
    list_filter = ["status", "locale", "potential", "frequency"]
    search_fields = ["=email", "=external_id"]
    show_full_result_count = False
    readonly_fields = ["id", "created_at", "updated_at", "confirmed_at", "unsubscribed_at", "suppressed_at"]
    filter_horizontal = ["topics"]
    inlines = [ConsentEventInline]
    # Data rights (issue 7): products, export and erasure.
    actions = ["export_data", "erase_data"]

    def get_inlines(self, request: HttpRequest, obj: Contact | None) -> list:
        return [ProductInline, *super().get_inlines(request, obj)]

    @admin.action(description=_("Export the selected contact's data (JSON)"), permissions=["view"])
    def export_data(self, request: HttpRequest, queryset: QuerySet[Contact]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, _("Choose exactly one contact to export."), messages.WARNING)
            return None
        contact = queryset.get()
        data = contact_export(contact=contact, source=f"admin:{request.user.pk}")
        return export_response(data, contact)

    @admin.action(description=_("Erase the selected contacts' personal data…"), permissions=["delete"])
    def erase_data(self, request: HttpRequest, queryset: QuerySet[Contact]) -> HttpResponse | None:
        if request.POST.get("confirm") == "yes":
            for contact in queryset:
                contact_erase(contact=contact, source=f"admin:{request.user.pk}")
            self.message_user(request, _("Personal data erased; the addresses stay suppressed."), messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Erase personal data?"),
            "contacts": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/preferences/contact/erase_confirmation.html", context)


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
