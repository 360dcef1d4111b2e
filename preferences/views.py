"""Pages a person sees: signup, confirmation, preference centre, unsubscribe."""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from config.csp import framable_by
from config.publish import publish_now_or_never
from preferences import services
from preferences.client import client_ip
from preferences.data_rights import contact_export, readable_export
from preferences.forms import LinkRequestForm, PreferencesForm, SignupForm
from preferences.leaving import contact_choose_alternative, contact_leave, leave_give_reason, less_often_options
from preferences.models import Contact, LeaveFeedback, Locale
from preferences.policy import allowed_choices, effective_frequency, policy_limit
from preferences.services import PAUSE_MONTHS
from preferences.tasks import link_request_resolve
from preferences.templatetags.dates import long_date
from preferences.throttles import link_request_allowed, signup_allowed
from preferences.tokens import InvalidToken, Purpose, read_token, read_token_payload

ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


def choice_field(form: forms.BaseForm, name: str) -> forms.ChoiceField:
    """Return the form's choice field `name` (its choices are set per request)."""
    return cast(forms.ChoiceField, form.fields[name])


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


@framable_by("SIGNUP_FRAME_ANCESTORS")
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    locale = _page_locale(request)
    translation.activate(locale)
    initial = {"locale": locale, "frequency": settings.CADENCE_DEFAULT_FREQUENCY}
    form = SignupForm(request.POST or None, initial=initial)
    choice_field(form, "frequency").choices = allowed_choices()
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
        contact, waiting = read_token_payload(token, Purpose.CONFIRM)
    except InvalidToken:
        return _invalid_link(request)
    translation.activate(_page_locale(request, contact))
    pending = services.pending_signup_for(contact, waiting)
    if request.method == "POST":
        if services.contact_confirm(
            contact=contact,
            evidence=client_evidence(request, source="confirm-link"),
            pending_signup_id=str(pending.pk) if pending else "",
        ):
            pending = None
        contact.refresh_from_db()
    return render(
        request,
        "preferences/confirm.html",
        {
            "contact": contact,
            "confirmed": contact.status == Contact.Status.CONFIRMED and pending is None,
            "waiting": pending is not None,
            "invited": contact.status == Contact.Status.PENDING and contact.was_invited(),
        },
    )


def _describe_changes(contact: Contact, changes: list[str]) -> list[str]:
    lines = []
    if "topics" in changes or "general_updates" in changes:
        names = [topic.name(contact.locale) for topic in contact.topics.all()]
        if names:
            lines.append(_("Your topics are now: %(topics)s.") % {"topics": ", ".join(names)})
        elif contact.general_updates:
            lines.append(_("You chose no particular topic: you will get general updates about everything."))
    if "frequency" in changes:
        lines.append(_("We will email you: %(frequency)s.") % {"frequency": effective_frequency(contact).label.lower()})
    if "locale" in changes:
        lines.append(_("Our emails will be in %(language)s.") % {"language": Locale(contact.locale).label})
    if "paused_until" in changes:
        if contact.paused_until:
            lines.append(_("Paused until %(date)s.") % {"date": long_date(contact.paused_until)})
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


def _preferences_form(contact: Contact, locale: str, data: Any = None) -> PreferencesForm:
    """Return the one form of the preference centre, showing the contact's current choices."""
    form = PreferencesForm(
        data,
        initial={
            "topics": list(contact.topics.values_list("slug", flat=True)),
            "general_updates": contact.general_updates,
            "frequency": effective_frequency(contact).key,
            "locale": contact.locale,
            "service_reminders": contact.service_reminders,
        },
        paused_until=long_date(contact.paused_until) if contact.is_paused() else "",
    )
    frequency = form.fields["frequency"]
    assert isinstance(frequency, forms.ChoiceField)
    frequency.choices = allowed_choices(contact)
    form.set_topic_labels(locale)
    return form


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
    dossier_link_sent = False
    posted = request.method == "POST"
    action = request.POST.get("action", "save")
    form = _preferences_form(contact, locale, request.POST if posted and action == "save" else None)
    status = 200
    if posted:
        if action == "save":
            if form.is_valid():
                data = form.cleaned_data
                pause_months, resume = form.pause_choice()
                changed = services.contact_update_preferences(
                    contact=contact,
                    evidence=evidence,
                    topics=data["topics"],
                    general_updates=data["general_updates"],
                    frequency=data["frequency"],
                    locale=data["locale"],
                    pause_months=pause_months,
                    resume=resume,
                    service_reminders=data["service_reminders"],
                )
            else:
                status = 400
        elif action == "unsubscribe":
            unsubscribed_now = contact_leave(contact=contact, evidence=evidence)
        elif action == "reason":
            leave_give_reason(contact=contact, reason=request.POST.get("reason", ""))
        elif action == "resubscribe":
            if services.contact_resubscribe(contact=contact, evidence=evidence):
                changed = ["status"]
        elif action == "service_reminders":
            changed = services.contact_update_preferences(
                contact=contact, evidence=evidence, service_reminders=request.POST.get("service_reminders") == "on"
            )
        elif action in ("dossier", "data", "export"):
            # The dossier needs fresh proof of the mailbox: a one-time link goes there.
            services.contact_request_dossier(contact=contact)
            dossier_link_sent = True
        elif action == "sign_out":
            services.contact_sign_out_everywhere(contact=contact)
            return render(request, "preferences/signed_out.html")
        else:
            status = 400
        contact.refresh_from_db()
        if "locale" in changed and "lang" not in request.GET:
            translation.activate(contact.locale)
            locale = contact.locale
        if status == 200:
            form = _preferences_form(contact, locale)
    return render(
        request,
        "preferences/preference_centre.html",
        {
            "contact": contact,
            "form": form,
            "policy": policy_limit(contact),
            "invited": contact.status == Contact.Status.PENDING and contact.was_invited(),
            "changes": _describe_changes(contact, changed),
            "saved": posted and status == 200 and action not in ("unsubscribe", "reason", "dossier", "data", "export"),
            "dossier_link_sent": dossier_link_sent,
            "dossier_minutes": settings.DOSSIER_TOKEN_MAX_AGE // 60,
            "unsubscribed_now": unsubscribed_now,
            "reason_given": posted and action == "reason",
            "reasons": LeaveFeedback.Reason.choices,
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
    locale = _page_locale(request, contact)
    translation.activate(locale)
    evidence = client_evidence(request, source="unsubscribe-link")
    topics = list(contact.topics.all())
    context: dict[str, Any] = {
        "contact": contact,
        "token": token,
        "less_often": less_often_options(contact),
        "applied": effective_frequency(contact),
        "pause_months": PAUSE_MONTHS,
        "topics": [(topic.slug, topic.name(locale)) for topic in topics],
        "reasons": LeaveFeedback.Reason.choices,
        "done": None,
    }
    status = 200
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        action = "" if one_click else request.POST.get("action", "")
        if one_click:
            evidence = services.Evidence(
                ip_address=evidence.ip_address,
                user_agent=evidence.user_agent,
                source="one-click",
                extra={"rfc8058": True},
            )
        if action == "reason":
            context["reason_given"] = (
                leave_give_reason(contact=contact, reason=request.POST.get("reason", "")) is not None
            )
            context["done"] = "reason"
        elif action == "less_often":
            offered = {f.key: f for f in context["less_often"]}
            chosen = offered.get(request.POST.get("frequency", ""))
            if chosen is None:
                status = 400
            else:
                contact_choose_alternative(
                    contact=contact, evidence=evidence, outcome=LeaveFeedback.Outcome.LESS_OFTEN, frequency=chosen.key
                )
                context.update(done="less_often", chosen=chosen)
        elif action == "pause":
            months = request.POST.get("months", "")
            if not months.isdigit() or int(months) not in PAUSE_MONTHS:
                status = 400
            else:
                contact_choose_alternative(
                    contact=contact, evidence=evidence, outcome=LeaveFeedback.Outcome.PAUSE, pause_months=int(months)
                )
                context["done"] = "pause"
        elif action == "fewer_topics":
            dropped = set(request.POST.getlist("drop"))
            kept = [topic for topic in topics if topic.slug not in dropped]
            if not dropped & {topic.slug for topic in topics}:
                status = 400
                context["error"] = _("Tick the topics you no longer want to hear about.")
            elif not kept and not contact.general_updates:
                status = 400
                context["error"] = _(
                    "That is every topic. To stop all our emails, choose “Unsubscribe from all emails” below."
                )
            else:
                contact_choose_alternative(
                    contact=contact, evidence=evidence, outcome=LeaveFeedback.Outcome.FEWER_TOPICS, topics=kept
                )
                context.update(done="fewer_topics", kept=[topic.name(locale) for topic in kept])
        else:
            contact_leave(contact=contact, evidence=evidence)
            context["done"] = "unsubscribed"
        contact.refresh_from_db()
        context["contact"] = contact
        if context["done"] == "pause":
            context["paused_until"] = long_date(contact.paused_until)
    elif contact.status == Contact.Status.UNSUBSCRIBED:
        context["done"] = "unsubscribed"
    return render(request, "preferences/unsubscribe.html", context, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def dossier(request: HttpRequest, token: str) -> HttpResponse:
    """The person's dossier, behind the one-time link mailed on request.

    GET only shows the buttons (link scanners fetch links in mails); the POST spends the link, so a
    second use, or a forwarded mail, shows nothing.
    """
    try:
        contact = read_token(token, Purpose.DOSSIER)
    except InvalidToken:
        return _invalid_link(request)
    translation.activate(_page_locale(request, contact))
    if request.method == "GET":
        return render(request, "preferences/dossier.html", {"token": token})
    action = request.POST.get("action", "")
    if action not in ("show", "export"):
        return render(request, "preferences/dossier.html", {"token": token}, status=400)
    if not services.contact_use_dossier_link(contact=contact):
        return _invalid_link(request)
    data = contact_export(contact=contact, source="dossier-link")
    if action == "export":
        return export_response(data, contact)
    return render(request, "preferences/your_data.html", {"sections": readable_export(data)})


def link_request_enqueue(email: str) -> None:
    """Hand the address to a worker, whether it is known or not: one task per request, no lookup here.

    With the broker down the request is dropped for every address alike (the person may ask again): the
    answer and its time do not depend on the address.
    """
    publish_now_or_never(link_request_resolve, (email,), queue="welcome")


@never_cache
@require_http_methods(["GET", "POST"])
def link_request(request: HttpRequest) -> HttpResponse:
    """Ask for a fresh preference-centre link by address: the same answer whether it is known or not."""
    translation.activate(_page_locale(request))
    form = LinkRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not link_request_allowed(request):
            return render(request, "preferences/link_request.html", {"form": form, "throttled": True}, status=429)
        link_request_enqueue(form.cleaned_data["email"])
        return render(request, "preferences/link_request.html", {"form": form, "sent": True})
    return render(request, "preferences/link_request.html", {"form": form}, status=400 if form.errors else 200)
