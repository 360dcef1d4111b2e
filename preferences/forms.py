from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from preferences.frequencies import frequency_choices
from preferences.models import Locale, Topic
from preferences.services import PAUSE_MONTHS
from preferences.validators import refuse_control_characters


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


class MarkedErrorsMixin:
    """Mark each field with an error (aria-invalid) and point it at its message (aria-describedby)."""

    def full_clean(self) -> None:
        super().full_clean()  # type: ignore[misc]
        for name in self.errors:  # type: ignore[attr-defined]
            if name not in self.fields:  # type: ignore[attr-defined]
                continue
            bound = self[name]  # type: ignore[index]
            bound.field.widget.attrs.update({"aria-invalid": "true", "aria-describedby": f"{bound.auto_id}_errors"})


class TopicLabelsMixin:
    """Show each topic in the page's language."""

    def set_topic_labels(self, locale: str) -> None:
        field = self.fields["topics"]  # type: ignore[attr-defined]
        field.label_from_instance = lambda topic: topic.name(locale)


class SignupForm(MarkedErrorsMixin, TopicLabelsMixin, forms.Form):
    email = forms.EmailField(label=_("Email address"), max_length=254)
    first_name = forms.CharField(
        label=_("First name"), max_length=100, required=False, validators=[refuse_control_characters]
    )
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


KEEP = ""
RESUME = "resume"


class PreferencesForm(MarkedErrorsMixin, TopicLabelsMixin, forms.Form):
    """Everything a subscriber chooses, in one form: saving it never loses another choice."""

    topics = _topic_field(required=False)
    general_updates = forms.BooleanField(
        label=_("No particular topics: send me general updates about everything"), required=False
    )
    frequency = forms.ChoiceField(label=_("How often"), choices=frequency_choices, widget=forms.RadioSelect)
    locale = forms.ChoiceField(label=_("Language of our emails"), choices=Locale.choices, widget=forms.RadioSelect)
    pause = forms.ChoiceField(label=_("Take a break"), required=False, widget=forms.RadioSelect)
    service_reminders = forms.BooleanField(
        label=_("Remind me before a product I hold renews or ends. These are service messages, not marketing."),
        required=False,
    )

    def __init__(self, *args: Any, paused_until: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keep = _("Keep my pause until %(date)s") % {"date": paused_until} if paused_until else _("No pause")
        months = [
            (str(m), ngettext("Pause for %(n)d month", "Pause for %(n)d months", m) % {"n": m}) for m in PAUSE_MONTHS
        ]
        pause = self.fields["pause"]
        assert isinstance(pause, forms.ChoiceField)
        pause.choices = [(KEEP, keep), *months] + ([(RESUME, _("End the pause now"))] if paused_until else [])
        pause.initial = KEEP

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # Form.clean() returns cleaned_data
        topics, general = data.get("topics"), data.get("general_updates")
        if "topics" in data and not topics and not general:
            self.add_error("topics", _("Choose at least one topic, or choose general updates if no topic fits you."))
        elif topics and general:
            self.add_error(
                "general_updates", _("Choose topics or general updates, not both: untick the topics or this box.")
            )
        return data

    def pause_choice(self) -> tuple[int | None, bool]:
        """Return (months to pause, whether to end the pause) from the cleaned data."""
        value = self.cleaned_data.get("pause") or KEEP
        if value == RESUME:
            return None, True
        return (int(value) if value != KEEP else None), False


class LinkRequestForm(MarkedErrorsMixin, forms.Form):
    email = forms.EmailField(label=_("Email address"), max_length=254)
