"""Public signup API."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from preferences import services
from preferences.models import Locale, Topic
from preferences.policy import allowed_choices
from preferences.throttles import SignupAddressThrottle, SignupIPThrottle
from preferences.views import client_evidence


class SubscribeView(APIView):
    """Sign up for email. The answer is the same whether the address is new, pending or known."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [SignupIPThrottle, SignupAddressThrottle]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "SubscribeRequest"

        email = serializers.EmailField(max_length=254)
        first_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        locale = serializers.ChoiceField(choices=Locale.choices, default=Locale.NL)
        topics = serializers.SlugRelatedField(
            slug_field="slug", queryset=Topic.objects.filter(is_active=True), many=True, allow_empty=False
        )
        frequency = serializers.CharField(required=False, help_text="One of the configured frequencies, e.g. monthly.")
        source = serializers.CharField(max_length=100, required=False, allow_blank=True, default="api")

        def validate_frequency(self, value: str) -> str:
            keys = [key for key, _label in allowed_choices()]
            if value not in keys:
                raise serializers.ValidationError(_("Choose one of: %(keys)s.") % {"keys": ", ".join(keys)})
            return value

    @extend_schema(
        request=InputSerializer,
        responses={202: inline_serializer("SubscribeAccepted", {"detail": serializers.CharField()})},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.contact_subscribe(
            email=data["email"],
            first_name=data["first_name"],
            locale=data["locale"],
            topics=data["topics"],
            frequency=data.get("frequency") or settings.CADENCE_DEFAULT_FREQUENCY,
            source=data["source"],
            evidence=client_evidence(request, source=data["source"]),
        )
        return Response(
            {"detail": _("Thank you. Check your inbox: we sent you an email to confirm.")},
            status=status.HTTP_202_ACCEPTED,
        )
