"""Pages a person sees: signup, confirmation, preference centre, unsubscribe."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from preferences import services
from preferences.client import client_ip
from preferences.data_rights import contact_export
from preferences.forms import PauseForm, PreferencesForm, SignupForm
from preferences.frequencies import frequencies, get_frequency
from preferences.models import Contact, Locale
from preferences.policy import allowed_choices, effective_frequency
from preferences.throttles import signup_allowed
from preferences.tokens import InvalidToken, Purpose, make_token, read_token

ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


def client_evidence(request: HttpRequest, source: str = "") -> services.Evidence:
    """Return the evidence of a request: address, browser and where it came from."""
    return services.Evidence(
        ip_address=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        source=source,
    )


def _page_locale(request: HttpRequest, contact: Contact | None = None) -> str:
    """The page speaks ?lang=, else the contact's language, else the browser's."""
    asked = request.GET.get("lang", "")
    if asked in dict(settings.LANGUAGES):
        return asked
    if contact is not None:
        return contact.locale
    return translation.get_language_from_request(request)


def export_response(data: dict[str, Any], contact: Contact) -> HttpResponse:
    """Return the export as a JSON file download."""
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="contact-{contact.pk}.json"'
    return response


def _invalid_link(request: HttpRequest) -> HttpResponse:
    translation.activate(_page_locale(request))
    return render(request, "preferences/invalid_link.html", status=404)


@xframe_options_exempt
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    locale = _page_locale(request)
    translation.activate(locale)
    initial = {"locale": locale, "frequency": settings.CADENCE_DEFAULT_FREQUENCY}
    form = SignupForm(request.POST or None, initial=initial)
    form.fields["frequency"].choices = allowed_choices()
    form.set_topic_labels(locale)
    if request.method == "POST" and form.is_valid():
        if not signup_allowed(request):
            return render(request, "preferences/signup.html", {"form": form, "throttled": True}, status=429)
        if form.is_bot():
            return render(request, "preferences/signup_done.html")  # the same answer; nothing stored
        data = form.cleaned_data
        services.contact_subscribe(
            email=data["email"],
            first_name=data["first_name"],
            locale=data["locale"],
            topics=data["topics"],
            frequency=data["frequency"],
            source=request.GET.get("source", "signup-form")[:100],
            evidence=client_evidence(request, source=request.GET.get("source", "signup-form")),
        )
        return render(request, "preferences/signup_done.html")
    return render(request, "preferences/signup.html", {"form": form}, status=400 if form.errors else 200)


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    try:
        contact = read_token(token, Purpose.CONFIRM)
    except InvalidToken:
        return _invalid_link(request)
    translation.activate(_page_locale(request, contact))
    if request.method == "POST":
        services.contact_confirm(contact=contact, evidence=client_evidence(request, source="confirm-link"))
        contact.refresh_from_db()
    return render(
        request,
        "preferences/confirm.html",
        {
            "contact": contact,
            "confirmed": contact.status == Contact.Status.CONFIRMED,
            "preferences_url": f"/preferences/{make_token(contact, Purpose.PREFERENCES)}/",
        },
    )


def _describe_changes(contact: Contact, changes: list[str]) -> list[str]:
    lines = []
    if "topics" in changes:
        names = [topic.name(contact.locale) for topic in contact.topics.all()]
        lines.append(_("Your topics are now: %(topics)s.") % {"topics": ", ".join(names) or _("none")})
    if "frequency" in changes:
        lines.append(
            _("We will email you: %(frequency)s.") % {"frequency": get_frequency(contact.frequency).label.lower()}
        )
    if "locale" in changes:
        lines.append(_("Our emails will be in %(language)s.") % {"language": Locale(contact.locale).label})
    if "paused_until" in changes:
        if contact.paused_until:
            lines.append(_("Paused until %(date)s.") % {"date": contact.paused_until.date().isoformat()})
        else:
            lines.append(_("Your pause has ended; you will hear from us again."))
    if "status" in changes:
        lines.append(_("You are subscribed again."))
    if "service_reminders" in changes:
        if contact.service_reminders:
            lines.append(_("You will receive reminders about products you hold again."))
        else:
            lines.append(_("You will no longer receive reminders about products you hold."))
    return lines


@never_cache
@require_http_methods(["GET", "POST"])
def preference_centre(request: HttpRequest, token: str) -> HttpResponse:
    try:
        contact = read_token(token, Purpose.PREFERENCES)
    except InvalidToken:
        return _invalid_link(request)
    locale = _page_locale(request, contact)
    translation.activate(locale)
    evidence = client_evidence(request, source="preference-centre")
    changed: list[str] = []
    unsubscribed_now = False
    posted = request.method == "POST"
    action = request.POST.get("action", "save")
    form = PreferencesForm(
        request.POST if posted and action == "save" else None,
        initial={
            "topics": list(contact.topics.values_list("slug", flat=True)),
            "frequency": effective_frequency(contact).key,
            "locale": contact.locale,
        },
    )
    form.fields["frequency"].choices = allowed_choices(contact)
    pause_form = PauseForm(request.POST if posted and action == "pause" else None)
    status = 200
    if posted:
        if action == "save":
            if form.is_valid():
                data = form.cleaned_data
                changed = services.contact_update_preferences(
                    contact=contact,
                    evidence=evidence,
                    topics=data["topics"],
                    frequency=data["frequency"],
                    locale=data["locale"],
                )
            else:
                status = 400
        elif action == "pause" and pause_form.is_valid():
            changed = services.contact_update_preferences(
                contact=contact, evidence=evidence, pause_months=pause_form.cleaned_data["months"]
            )
        elif action == "resume":
            changed = services.contact_update_preferences(contact=contact, evidence=evidence, resume=True)
        elif action == "unsubscribe":
            unsubscribed_now = services.contact_unsubscribe(contact=contact, evidence=evidence)
        elif action == "resubscribe":
            if services.contact_resubscribe(contact=contact, evidence=evidence):
                changed = ["status"]
        elif action == "service_reminders":
            changed = services.contact_update_preferences(
                contact=contact, evidence=evidence, service_reminders=request.POST.get("service_reminders") == "on"
            )
        elif action == "export":
            return export_response(contact_export(contact=contact, source="preference-centre"), contact)
        else:
            status = 400
        contact.refresh_from_db()
        if "locale" in changed and "lang" not in request.GET:
            translation.activate(contact.locale)
            locale = contact.locale
        if status == 200:
            form = PreferencesForm(
                initial={
                    "topics": list(contact.topics.values_list("slug", flat=True)),
                    "frequency": effective_frequency(contact).key,
                    "locale": contact.locale,
                }
            )
            form.fields["frequency"].choices = allowed_choices(contact)
            pause_form = PauseForm()
    form.set_topic_labels(locale)
    return render(
        request,
        "preferences/preference_centre.html",
        {
            "contact": contact,
            "form": form,
            "pause_form": pause_form,
            "changes": _describe_changes(contact, changed),
            "saved": request.method == "POST" and status == 200,
            "unsubscribed_now": unsubscribed_now,
            "token": token,
            "locale": locale,
            "languages": settings.LANGUAGES,
        },
        status=status,
    )


@never_cache
@csrf_exempt  # RFC 8058: one-click POSTs come from mail clients, with no cookie or CSRF token.
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        contact = read_token(token, Purpose.UNSUBSCRIBE)
    except InvalidToken:
        return _invalid_link(request)
    translation.activate(_page_locale(request, contact))
    evidence = client_evidence(request, source="unsubscribe-link")
    less_often = frequencies()[-1]
    context = {
        "contact": contact,
        "token": token,
        "less_often": less_often,
        "preferences_url": f"/preferences/{make_token(contact, Purpose.PREFERENCES)}/",
        "done": None,
    }
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        if one_click:
            evidence = services.Evidence(
                ip_address=evidence.ip_address,
                user_agent=evidence.user_agent,
                source="one-click",
                extra={"rfc8058": True},
            )
        if request.POST.get("action") == "less_often" and not one_click:
            services.contact_update_preferences(contact=contact, evidence=evidence, frequency=less_often.key)
            context["done"] = "less_often"
        else:
            services.contact_unsubscribe(contact=contact, evidence=evidence)
            context["done"] = "unsubscribed"
        contact.refresh_from_db()
    elif contact.status == Contact.Status.UNSUBSCRIBED:
        context["done"] = "unsubscribed"
    return render(request, "preferences/unsubscribe.html", context)
