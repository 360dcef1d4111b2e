"""The marketers' admin for contacts, topics, the consent ledger, conversions and the cadence policy.

The contact list is built for a million rows: the count is capped, every filter is served by an
index in the list's order (-created_at), and search matches the start of an address (the unique
column's pattern index) or of a first name (an index on its lower case), or one exact CRM id or id.
"""

from __future__ import annotations

import uuid
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from import_export.admin import ExportActionMixin, ImportExportMixin
from import_export.forms import ConfirmImportForm, ImportForm

from preferences import services
from preferences.audit import audit_record

if TYPE_CHECKING:
    pass
from preferences.data_rights import contact_erase, contact_export
from preferences.frequencies import frequencies, frequency_choices
from preferences.importing import import_job_create
from preferences.models import (
    AuditEntry,
    CadencePolicy,
    ConsentEvent,
    Contact,
    Conversion,
    ImportJob,
    Lifecycle,
    Product,
    SuppressionEntry,
    address_hashes,
)
from preferences.resources import ContactResource
from preferences.views import export_response

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class TopicAdmin(admin.ModelAdmin):
    list_display = ["slug", "name_en", "name_nl", "is_active", "position"]
    list_editable = ["is_active", "position"]
    prepopulated_fields = {"slug": ["name_en"]}


class CappedCountPaginator(Paginator):
    """Count at most ADMIN_COUNT_CAP + 1 rows, so no page of the list counts a million rows."""

    @cached_property
    def count(self) -> int:
        cap = settings.ADMIN_COUNT_CAP
        # Only the primary key: the columns annotated for display are not computed for the count.
        return cast(QuerySet, self.object_list).values("pk")[: cap + 1].count()

    @property
    def is_capped(self) -> bool:
        return self.count > settings.ADMIN_COUNT_CAP


class ContactSearchMixin(admin.ModelAdmin):
    """Search a list of rows about contacts by the start of the address (served by its pattern index)."""

    search_fields = ["contact__email"]
    search_help_text = _("The start of an email address.")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(contact__email__startswith=services.normalize_email(term)), False


class LifecycleFilter(admin.SimpleListFilter):
    title = _("lifecycle")
    parameter_name = "lifecycle"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, StrOrPromise]]:
        return list(Lifecycle.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is not None and value in Lifecycle.values:
            return queryset.filter(Lifecycle.q(value))
        return queryset


class FrequencyFilter(admin.SimpleListFilter):
    """The configured frequencies (not a DISTINCT over the table)."""

    title = _("frequency")
    parameter_name = "frequency"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return frequency_choices()

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(frequency=self.value()) if self.value() else queryset


class ContactImportForm(ImportForm):
    skip_bad_rows = forms.BooleanField(
        label=_("Skip bad rows"),
        required=False,
        help_text=_("Import the good rows and list the bad ones. Without it, one bad row stops the whole file."),
    )
    invite = forms.BooleanField(
        label=_("Invite the new and pending contacts (double opt-in)"),
        required=False,
        help_text=_(
            "Each gets one mail asking to confirm, recorded in the consent ledger as an invitation, not as consent. "
            "Nobody is invited twice."
        ),
    )


class ContactConfirmImportForm(ConfirmImportForm):
    skip_bad_rows = forms.BooleanField(required=False, widget=forms.HiddenInput)
    invite = forms.BooleanField(required=False, widget=forms.HiddenInput)


class LargeImportForm(forms.Form):
    import_file = forms.FileField(label=_("CSV file (UTF-8, with a header line)"))
    skip_bad_rows = ContactImportForm.base_fields["skip_bad_rows"]
    invite = ContactImportForm.base_fields["invite"]


class ContactAdminForm(forms.ModelForm):
    frequency = forms.ChoiceField(label=_("frequency"), choices=frequency_choices)

    class Meta:
        model = Contact
        exclude: list[str] = []  # the admin's fieldsets choose the fields


class ProductInline(admin.TabularInline):
    model = Product
    extra = 0
    fields = ["name", "product_type", "started_on", "renews_on", "ends_on", "external_id"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "product_type", "contact", "started_on", "renews_on", "ends_on"]
    list_filter = ["product_type"]
    list_select_related = ["contact"]
    search_fields = ["=external_id", "=contact__email"]
    raw_id_fields = ["contact"]
    date_hierarchy = "renews_on"
    show_full_result_count = False


# Contact and Topic are registered once, by cadence.admin, with the views messaging and cadence add
# (the delivery timeline, the topic preview, the schedule and health): one page, whatever the app order.
class ContactAdmin(ImportExportMixin, ExportActionMixin, admin.ModelAdmin):
    form = ContactAdminForm
    list_display = ["email", "status", "lifecycle", "share_of_customer", "potential", "frequency", "created_at"]
    list_filter = ["status", LifecycleFilter, "potential", FrequencyFilter, "locale"]
    search_fields = ["email"]
    search_help_text = _("The start of an email address or a first name, or an exact CRM id or contact id.")
    ordering = ["-created_at"]
    sortable_by = ["created_at"]
    list_per_page = 50
    paginator = CappedCountPaginator
    show_full_result_count = False
    readonly_fields = [
        "id",
        "created_at",
        "updated_at",
        "confirmed_at",
        "unsubscribed_at",
        "suppressed_at",
        "former_customer_at",
        "lifecycle",
        "consent_ledger",
    ]
    filter_horizontal = ["topics"]
    resource_classes = [ContactResource]
    import_form_class = ContactImportForm
    confirm_form_class = ContactConfirmImportForm
    import_template_name = "admin/preferences/contact/import.html"
    actions = [
        "set_potential_high",
        "set_potential_medium",
        "set_potential_low",
        "set_potential_none",
        "pause",
        "invite",
        "export_data",
        "erase_data",
    ]

    @admin.display(description=_("lifecycle"))
    def lifecycle(self, contact: Contact) -> str:
        return str(Lifecycle(contact.lifecycle).label)

    @admin.display(description=_("consent ledger (latest 50)"))
    def consent_ledger(self, contact: Contact) -> str:
        events = ConsentEvent.objects.filter(contact=contact).order_by("-occurred_at", "-id")[:50]
        return render_to_string("admin/preferences/contact/ledger.html", {"events": events})

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path("import-large/", view(self.large_import_view), name="preferences_contact_import_large"),
            path(
                "import-large/<uuid:job_id>/",
                view(self.large_import_status_view),
                name="preferences_contact_import_status",
            ),
            *super().get_urls(),
        ]

    # Each bulk or data-rights door asks for its own permission, whatever django-import-export's
    # settings say: `preferences.import_contact`, `export_contact`, `invite_contact`, `export_dossier`
    # and `erase_contact` (Contact.Meta.permissions; the roles that hold them: preferences/roles.py).
    def has_import_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("preferences.import_contact")

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("preferences.export_contact")

    def has_invite_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("preferences.invite_contact")

    def has_export_dossier_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("preferences.export_dossier")

    def has_erase_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("preferences.erase_contact")

    def large_import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a file of any size; a Celery worker validates and applies it in the background."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = LargeImportForm(request.POST or None, request.FILES or None)
        posted = request.method == "POST" and form.is_valid()
        if posted and form.cleaned_data["invite"] and not self.has_invite_permission(request):
            form.add_error("invite", _("You may import, but not invite: that needs the invite permission."))
        if request.method == "POST" and form.is_valid():
            job = import_job_create(
                upload=form.cleaned_data["import_file"],
                skip_bad_rows=form.cleaned_data["skip_bad_rows"],
                invite=form.cleaned_data["invite"],
                requested_by=str(request.user),
            )
            return HttpResponseRedirect(reverse("admin:preferences_contact_import_status", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Import a large file in the background"),
            "form": form,
            "jobs": ImportJob.objects.all()[:10],
        }
        return TemplateResponse(request, "admin/preferences/contact/import_large.html", context)

    def large_import_status_view(self, request: HttpRequest, job_id: Any) -> HttpResponse:
        """The progress of a background import; refreshes itself until the job is finished."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        job = get_object_or_404(ImportJob, pk=job_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Import: %(name)s") % {"name": job.original_name},
            "job": job,
        }
        return TemplateResponse(request, "admin/preferences/contact/import_status.html", context)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """Match the start of an address or a first name (both indexed), an exact CRM id or contact id."""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(pk=uuid.UUID(term)), False
        except ValueError:
            pass
        prefix = services.normalize_email(term)
        matches = Q(email__startswith=prefix) | Q(external_id=term)
        if "@" not in term:
            queryset = queryset.alias(first_name_lower=Lower("first_name"))
            matches |= Q(first_name_lower__startswith=term.lower())
        return queryset.filter(matches), False

    def get_export_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_export_queryset(request).order_by()

    def get_data_for_export(self, request: HttpRequest, queryset: QuerySet, **kwargs: Any) -> Any:
        """Return the rows to export, and write who exported how many to the audit trail."""
        if not self.has_export_permission(request):
            raise PermissionDenied
        dataset = super().get_data_for_export(request, queryset, **kwargs)
        audit_record(action=AuditEntry.Action.EXPORT, rows=len(dataset), user=request.user)
        return dataset

    def get_import_data_kwargs(self, **kwargs: Any) -> dict[str, Any]:
        form = kwargs.get("form")
        kwargs = super().get_import_data_kwargs(**kwargs)
        if form is not None and form.is_bound and form.is_valid():
            kwargs["skip_bad_rows"] = bool(form.cleaned_data.get("skip_bad_rows"))
        return kwargs

    def get_confirm_form_initial(self, request: HttpRequest, import_form: Any) -> dict[str, Any]:
        initial = super().get_confirm_form_initial(request, import_form)
        if import_form is not None:
            initial["skip_bad_rows"] = bool(import_form.cleaned_data.get("skip_bad_rows"))
            initial["invite"] = bool(import_form.cleaned_data.get("invite"))
        return initial

    def process_result(self, result: Any, request: HttpRequest) -> HttpResponse:
        totals = {str(kind): n for kind, n in result.totals.items() if n}
        audit_record(action=AuditEntry.Action.IMPORT, rows=result.total_rows, user=request.user, totals=totals)
        for line, errors in getattr(result, "skipped_bad_rows", [])[:100]:
            details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
            self.message_user(
                request, _("Line %(line)d skipped: %(errors)s") % {"line": line, "errors": details}, messages.WARNING
            )
        invitable = getattr(result, "invitable", {})
        wants_invite = request.POST.get("invite") in ("True", "true", "on", "1")
        if wants_invite and not self.has_invite_permission(request):
            self.message_user(request, _("Nobody was invited: that needs the invite permission."), messages.WARNING)
        elif wants_invite and invitable:
            invited = services.contacts_invite(
                contact_ids=Contact.objects.filter(email__in=list(invitable)).values_list("pk", flat=True),
                evidence=services.Evidence(source="import", extra={"user": str(request.user)}),
                consent_sources=invitable,
                import_id=uuid.uuid4().hex[:12],
            )
            audit_record(action=AuditEntry.Action.INVITE, rows=invited, user=request.user, source="import")
            self._report_invited(request, invited)
        return super().process_result(result, request)

    def _report_invited(self, request: HttpRequest, invited: int) -> None:
        self.message_user(
            request,
            ngettext(
                "%(n)d contact invited to confirm (double opt-in).",
                "%(n)d contacts invited to confirm (double opt-in).",
                invited,
            )
            % {"n": invited},
        )

    @admin.action(
        description=_("Invite the selected pending contacts to confirm (double opt-in)"), permissions=["invite"]
    )
    def invite(self, request: HttpRequest, queryset: QuerySet) -> None:
        invited = services.contacts_invite(
            contact_ids=queryset.values_list("pk", flat=True)[:10_000],
            evidence=services.Evidence(source="admin", extra={"user": str(request.user)}),
        )
        audit_record(action=AuditEntry.Action.INVITE, rows=invited, user=request.user, source="admin")
        self._report_invited(request, invited)

    def save_model(self, request: HttpRequest, obj: Contact, form: Any, change: bool) -> None:
        """Save the contact; a changed share of customer goes through the service (conversions)."""
        # The ledger entry for consent fields is written in save_related, once the topics are saved too.
        request._ledger_before = Contact.objects.get(pk=obj.pk).choices_snapshot() if change else None  # type: ignore[attr-defined]
        if change and "share_of_customer" in form.changed_data:
            share = obj.share_of_customer
            obj.share_of_customer = form.initial["share_of_customer"]
            super().save_model(request, obj, form, change)
            services.contact_set_share(contact=obj, share=share, source=f"admin:{request.user}")
            obj.refresh_from_db()
        else:
            super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Save topics and inlines; a change of status, topics, frequency or pause writes a ledger entry."""
        super().save_related(request, form, formsets, change)
        before = getattr(request, "_ledger_before", None)
        if before is None:
            return
        contact = Contact.objects.get(pk=form.instance.pk)
        after = contact.choices_snapshot()
        if after != before:
            services.contact_record_admin_change(contact=contact, user=str(request.user), before=before, after=after)

    def _set_potential(self, request: HttpRequest, queryset: QuerySet, potential: str) -> None:
        changed = services.contacts_set_potential(
            contact_ids=queryset.values_list("pk", flat=True), potential=potential
        )
        self.message_user(
            request,
            ngettext("%(n)d contact now has this potential.", "%(n)d contacts now have this potential.", changed)
            % {"n": changed},
        )

    @admin.action(description=_("Set potential: high"), permissions=["change"])
    def set_potential_high(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_potential(request, queryset, Contact.Potential.HIGH)

    @admin.action(description=_("Set potential: medium"), permissions=["change"])
    def set_potential_medium(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_potential(request, queryset, Contact.Potential.MEDIUM)

    @admin.action(description=_("Set potential: low"), permissions=["change"])
    def set_potential_low(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_potential(request, queryset, Contact.Potential.LOW)

    @admin.action(description=_("Set potential: none"), permissions=["change"])
    def set_potential_none(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_potential(request, queryset, Contact.Potential.NONE)

    @admin.action(description=_("Pause marketing mail for 3 months"), permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet) -> None:
        evidence = services.Evidence(source="admin", extra={"user": str(request.user)})
        paused = 0
        for contact in queryset.filter(status=Contact.Status.CONFIRMED).iterator(chunk_size=500):
            if services.contact_update_preferences(contact=contact, evidence=evidence, pause_months=3):
                paused += 1
        self.message_user(request, ngettext("%(n)d contact paused.", "%(n)d contacts paused.", paused) % {"n": paused})

    def get_inlines(self, request: HttpRequest, obj: Contact | None) -> list:
        return [ProductInline, *super().get_inlines(request, obj)]

    @admin.action(description=_("Export the selected contact's data (JSON)"), permissions=["export_dossier"])
    def export_data(self, request: HttpRequest, queryset: QuerySet[Contact]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, _("Choose exactly one contact to export."), messages.WARNING)
            return None
        contact = queryset.get()
        data = contact_export(contact=contact, source=f"admin:{request.user.pk}")
        audit_record(action=AuditEntry.Action.EXPORT_DOSSIER, rows=1, user=request.user)
        return export_response(data, contact)

    @admin.action(description=_("Erase the selected contacts' personal data…"), permissions=["erase"])
    def erase_data(self, request: HttpRequest, queryset: QuerySet[Contact]) -> HttpResponse | None:
        if request.POST.get("confirm") == "yes":
            erased = 0
            for contact in queryset:
                contact_erase(contact=contact, source=f"admin:{request.user.pk}")
                erased += 1
            audit_record(action=AuditEntry.Action.ERASE, rows=erased, user=request.user)
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
class ConsentEventAdmin(ContactSearchMixin, admin.ModelAdmin):
    list_display = ["occurred_at", "contact", "kind", "source", "wording_version"]
    list_filter = ["kind"]
    list_select_related = ["contact"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    raw_id_fields = ["contact"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # entries come from what people and staff do, never typed in by hand

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
            return queryset.filter(address_hash__in=address_hashes(search_term)), False
        return super().get_search_results(request, queryset, search_term)


@admin.register(Conversion)
class ConversionAdmin(ContactSearchMixin, admin.ModelAdmin):
    list_display = ["converted_at", "contact", "contact_source", "potential", "days_as_prospect", "mails_before"]
    list_filter = ["potential"]
    list_select_related = ["contact"]
    raw_id_fields = ["contact"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    ordering = ["-converted_at"]

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


class CadencePolicyForm(forms.ModelForm):
    max_frequency = forms.ChoiceField(label=_("most frequent cadence allowed"), required=False)

    class Meta:
        model = CadencePolicy
        fields = ["potential", "max_frequency", "welcome_only"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["max_frequency"]).choices = [("", _("any"))] + [
            (f.key, f.label) for f in frequencies()
        ]


@admin.register(CadencePolicy)
class CadencePolicyAdmin(admin.ModelAdmin):
    form = CadencePolicyForm
    list_display = ["potential", "max_frequency", "welcome_only", "updated_at"]
    list_editable = ["max_frequency", "welcome_only"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit trail, for the privacy officer: read only, nothing added, changed or removed here."""

    list_display = ["occurred_at", "actor", "action", "rows"]
    list_filter = ["action"]
    search_fields = ["=actor"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False
    readonly_fields = ["occurred_at", "actor", "actor_id", "action", "rows", "detail"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


# Admins of their own modules: CRM API keys (an expiry is required), background imports (queue again).
from preferences import api_keys_admin, import_admin  # noqa: E402, F401
