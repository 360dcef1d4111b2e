"""Public signup API."""

from __future__ import annotations

from typing import Any

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
from preferences.throttles import SIGNUP_THROTTLES
from preferences.validators import refuse_control_characters
from preferences.views import client_evidence


class TopicSlugsField(serializers.ListField):
    """A list of active topic slugs, at most MAX_TOPICS_PER_REQUEST, resolved to topics in one query."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", serializers.CharField(max_length=50))
        kwargs.setdefault("allow_empty", False)
        kwargs.setdefault("max_length", settings.MAX_TOPICS_PER_REQUEST)  # for the schema
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[Topic]:
        limit = settings.MAX_TOPICS_PER_REQUEST
        if isinstance(data, list) and len(data) > limit:  # before looking at any item
            raise serializers.ValidationError(_("Choose at most %(n)d topics.") % {"n": limit})
        slugs = list(dict.fromkeys(super().to_internal_value(data)))
        found = {topic.slug: topic for topic in Topic.objects.filter(is_active=True, slug__in=slugs)}
        unknown = [slug for slug in slugs if slug not in found]
        if unknown:
            raise serializers.ValidationError(_("Unknown topics: %(slugs)s.") % {"slugs": ", ".join(unknown)})
        return [found[slug] for slug in slugs]

    def run_validators(self, value: Any) -> None:
        """The length was checked before the query; the validators would count topics again."""


class SubscribeView(APIView):
    """Sign up for email. The answer is the same whether the address is new, pending or known."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = list(SIGNUP_THROTTLES)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "SubscribeRequest"

        email = serializers.EmailField(max_length=254)
        first_name = serializers.CharField(
            max_length=100, required=False, allow_blank=True, default="", validators=[refuse_control_characters]
        )
        locale = serializers.ChoiceField(choices=Locale.choices, default=Locale.NL)
        topics = TopicSlugsField()
        frequency = serializers.CharField(required=False, help_text="One of the configured frequencies, e.g. monthly.")
        # DRF pops declared fields off the class; the stubs see them as overriding Field.source.
        source = serializers.CharField(  # type: ignore[assignment]
            max_length=100, required=False, allow_blank=True, default="api"
        )

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
