from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from preferences.frequencies import frequency_choices
from preferences.models import Locale, Topic
from preferences.services import PAUSE_MONTHS


class TopicsField(forms.ModelMultipleChoiceField):
    """Topics by slug, at most MAX_TOPICS_PER_REQUEST (checked before the one query that resolves them)."""

    def clean(self, value: Any) -> Any:
        limit = settings.MAX_TOPICS_PER_REQUEST
        if isinstance(value, list | tuple) and len(value) > limit:
            raise forms.ValidationError(_("Choose at most %(n)d topics.") % {"n": limit}, code="too_many")
        return super().clean(value)


def _topic_field(required: bool) -> forms.ModelMultipleChoiceField:
    return TopicsField(
        queryset=Topic.objects.filter(is_active=True),
        widget=forms.CheckboxSelectMultiple,
        required=required,
        label=_("Topics"),
        to_field_name="slug",
        error_messages={"required": _("Choose at least one topic.")},
    )


class TopicLabelsMixin:
    """Show each topic in the page's language."""

    def set_topic_labels(self, locale: str) -> None:
        field = self.fields["topics"]  # type: ignore[attr-defined]
        field.label_from_instance = lambda topic: topic.name(locale)


class SignupForm(TopicLabelsMixin, forms.Form):
    email = forms.EmailField(label=_("Email address"), max_length=254)
    first_name = forms.CharField(label=_("First name"), max_length=100, required=False)
    topics = _topic_field(required=True)
    frequency = forms.ChoiceField(label=_("How often"), choices=frequency_choices, widget=forms.RadioSelect)
    locale = forms.ChoiceField(label=_("Language of our emails"), choices=Locale.choices)
    consent = forms.BooleanField(
        label=_("Yes, email me about the topics I chose. I can change or stop this at any time."),
        required=True,
        error_messages={"required": _("Tick the box to give your permission.")},
    )
    # A honeypot: hidden from people (and screen readers), filled in by bots that fill every field.
    website = forms.CharField(
        label=_("Leave this field empty"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    def is_bot(self) -> bool:
        """Return whether the honeypot field was filled in (call after is_valid())."""
        return bool(self.cleaned_data.get("website"))


class PreferencesForm(TopicLabelsMixin, forms.Form):
    topics = _topic_field(required=False)
    frequency = forms.ChoiceField(label=_("How often"), choices=frequency_choices, widget=forms.RadioSelect)
    locale = forms.ChoiceField(label=_("Language of our emails"), choices=Locale.choices, widget=forms.RadioSelect)


class PauseForm(forms.Form):
    months = forms.TypedChoiceField(
        label=_("Pause for"),
        coerce=int,
        choices=lambda: [(m, ngettext("%(n)d month", "%(n)d months", m) % {"n": m}) for m in PAUSE_MONTHS],
        widget=forms.RadioSelect,
    )
