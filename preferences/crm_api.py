"""CRM sync API: create, read, update and bulk upsert contacts by CRM (external) id.

Authenticated by a named, hashed, expiring API key per integration (preferences/api_keys.py) and
nothing else: no session, no user token. The API manages profiles, never consent (see crm.py).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from preferences.api_keys import CrmApiKeyAuthentication
from preferences.crm import RowResult, clean_row, contacts_upsert, contacts_upsert_checked
from preferences.models import Contact, Locale
from preferences.validators import refuse_control_characters

MAX_BULK = 1000


class HasCrmApiKey(BasePermission):
    """Allow a request that a valid CRM API key authenticated; refuse anything else."""

    message = "A valid CRM API key is required."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.successful_authenticator, CrmApiKeyAuthentication) and request.auth is not None


class ContactInputSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=100)
    email = serializers.EmailField(max_length=254, required=False)
    first_name = serializers.CharField(
        max_length=100, required=False, allow_blank=True, validators=[refuse_control_characters]
    )
    locale = serializers.ChoiceField(choices=Locale.choices, required=False)
    share_of_customer = serializers.IntegerField(min_value=0, max_value=100, required=False)
    potential = serializers.ChoiceField(choices=Contact.Potential.choices, required=False)
    # DRF pops declared fields off the class; the stubs see them as overriding Field.source.
    source = serializers.CharField(max_length=100, required=False, allow_blank=True)  # type: ignore[assignment]


class ContactOutputSerializer(serializers.ModelSerializer):
    lifecycle = serializers.CharField(read_only=True)

    class Meta:
        model = Contact
        fields = [
            "id",
            "external_id",
            "email",
            "first_name",
            "locale",
            "share_of_customer",
            "potential",
            "lifecycle",
            "source",
            "status",
            "frequency",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class RowResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["created", "updated", "unchanged", "error"])
    id = serializers.UUIDField(allow_null=True)
    # DRF pops declared fields off the class; the stubs see this one as overriding Serializer.errors.
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]


def _external_id(data: Any) -> str | None:
    """Return a row's CRM id when it is a non-empty string that can be looked up (a list, an object or a NUL
    character is a row error, which the serializer reports as a field error)."""
    value = data.get("external_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value and "\x00" not in value else None


def _validate(
    data: Any, *, external_id: str | None = None, existing: Contact | None = None
) -> tuple[dict | None, dict]:
    """Return (cleaned row, {}) or (None, errors by field) for one contact of a request."""
    if not isinstance(data, dict):
        return None, {"non_field_errors": [_("Expected an object.")]}
    data = dict(data)
    if external_id is not None:
        data["external_id"] = external_id
    if existing is not None:
        data.setdefault("email", existing.email)
    serializer = ContactInputSerializer(data=data)
    if not serializer.is_valid():
        return None, {k: [str(m) for m in v] for k, v in serializer.errors.items()}
    if "email" not in serializer.validated_data:
        return None, {"email": [_("This field is required for a new contact.")]}
    return clean_row(serializer.validated_data)


def _contact_or_404(external_id: str) -> Contact:
    """The contact with this CRM id; no CRM id holds a NUL character (which the database cannot compare)."""
    if "\x00" in external_id:
        raise Http404
    return get_object_or_404(Contact, external_id=external_id)


class CrmView(APIView):
    authentication_classes = [CrmApiKeyAuthentication]
    permission_classes = [HasCrmApiKey]


def _answer(result: RowResult) -> Response:
    if result.status == "error":
        return Response(result.errors, status=status.HTTP_400_BAD_REQUEST)
    code = status.HTTP_201_CREATED if result.status == "created" else status.HTTP_200_OK
    return Response(ContactOutputSerializer(result.contact).data, status=code)


class ContactListView(CrmView):
    @extend_schema(
        request=ContactInputSerializer,
        responses={201: ContactOutputSerializer, 200: ContactOutputSerializer},
        summary="Create or update one contact by CRM id (upsert)",
    )
    def post(self, request: Request) -> Response:
        external_id = _external_id(request.data)
        existing = Contact.objects.filter(external_id=external_id).first() if external_id else None
        cleaned, errors = _validate(request.data, existing=existing)
        if cleaned is None:
            return Response(errors, status=status.HTTP_400_BAD_REQUEST)
        return _answer(contacts_upsert(rows=[cleaned], source="crm-api")[0])


class ContactDetailView(CrmView):
    @extend_schema(responses=ContactOutputSerializer, summary="Read one contact by CRM id")
    def get(self, request: Request, external_id: str) -> Response:
        contact = _contact_or_404(external_id)
        return Response(ContactOutputSerializer(contact).data)

    @extend_schema(request=ContactInputSerializer, responses=ContactOutputSerializer, summary="Update by CRM id")
    def patch(self, request: Request, external_id: str) -> Response:
        contact = _contact_or_404(external_id)
        cleaned, errors = _validate(request.data, external_id=external_id, existing=contact)
        if cleaned is None:
            return Response(errors, status=status.HTTP_400_BAD_REQUEST)
        return _answer(contacts_upsert(rows=[cleaned], source="crm-api")[0])

    put = patch


class ContactBulkUpsertView(CrmView):
    @extend_schema(
        request=inline_serializer("ContactBulkUpsert", {"contacts": ContactInputSerializer(many=True)}),
        responses=inline_serializer(
            "ContactBulkResult",
            {
                "results": RowResultSerializer(many=True),
                "created": serializers.IntegerField(),
                "updated": serializers.IntegerField(),
                "unchanged": serializers.IntegerField(),
                "errors": serializers.IntegerField(),
            },
        ),
        summary=f"Create or update up to {MAX_BULK} contacts by CRM id; one result per row",
    )
    def post(self, request: Request) -> Response:
        rows = request.data.get("contacts") if isinstance(request.data, dict) else None
        if not isinstance(rows, list) or not rows:
            return Response({"contacts": [_("A non-empty list is required.")]}, status=status.HTTP_400_BAD_REQUEST)
        if len(rows) > MAX_BULK:
            return Response(
                {"contacts": [_("At most %(n)d contacts per request.") % {"n": MAX_BULK}]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        ids = [external_id for row in rows if (external_id := _external_id(row))]
        existing = {c.external_id: c for c in Contact.objects.filter(external_id__in=ids)}
        checked = [_validate(row, existing=existing.get(_external_id(row) or "")) for row in rows]
        results = contacts_upsert_checked(checked=checked, source="crm-api")
        body: dict[str, Any] = {"results": [], "created": 0, "updated": 0, "unchanged": 0, "errors": 0}
        for index, result in enumerate(results):
            key = "errors" if result.status == "error" else result.status
            body[key] += 1
            body["results"].append(
                {
                    "index": index,
                    "external_id": _external_id(rows[index]),
                    "status": result.status,
                    "id": str(result.contact.pk) if result.contact is not None else None,
                    "errors": result.errors,
                }
            )
        return Response(body)
