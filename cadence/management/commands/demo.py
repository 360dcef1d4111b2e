"""Load demo data: topics in Dutch and English, about 1,000 contacts, a superuser. Safe to run again."""

from __future__ import annotations

import random
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from cadence.models import ContentItem, Schedule
from cadence.relationship import health_recompute
from preferences.frequencies import frequencies, get_frequency
from preferences.models import ConsentEvent, Contact, Conversion, LeaveFeedback, Topic
from preferences.tokens import Purpose, contact_url

TOPICS = [
    ("saving", "Saving", "Sparen", "Interest rates, saving goals and tips.", "Rentes, spaardoelen en tips."),
    (
        "mortgage",
        "Mortgages",
        "Hypotheken",
        "Buying a home, moving, refinancing.",
        "Een huis kopen, verhuizen, oversluiten.",
    ),
    (
        "insurance",
        "Insurance",
        "Verzekeringen",
        "What is covered, and when to check.",
        "Wat is gedekt, en wanneer u het nakijkt.",
    ),
    ("pension", "Pension", "Pensioen", "Building up and planning your pension.", "Pensioen opbouwen en plannen."),
    (
        "energy",
        "Energy saving",
        "Energie besparen",
        "Lower bills and a greener home.",
        "Lagere rekeningen en een groener huis.",
    ),
    ("investing", "Investing", "Beleggen", "Markets explained, without jargon.", "Beurzen uitgelegd, zonder jargon."),
]
FIRST_NAMES = ["Anna", "Bram", "Chloë", "Daan", "Emma", "Finn", "Julia", "Lars", "Noor", "Sem", "Tess", "Yusuf"]
SOURCES = ["website", "branch", "app", "campaign-spring", "partner"]


class Command(BaseCommand):
    help = "Load demo topics, about 1,000 contacts (prospects included) and a superuser; print the URLs."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--contacts", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, contacts: int, seed: int, **options: Any) -> None:
        # Invented people and a superuser with a printed password have no place in production.
        if not settings.DEBUG:
            raise CommandError("The demo loads only with DEBUG=true (make run sets it).")
        with transaction.atomic():
            topics = self._topics()
            self._content(topics)
            if not Contact.objects.exists():
                self._contacts(contacts, topics, random.Random(seed))
                self._conversions(random.Random(seed))
                self._way_out(random.Random(seed))
            self._products_and_reminder_rules(random.Random(seed))
        self._health()
        password = self._superuser()
        demo = Contact.objects.filter(status=Contact.Status.CONFIRMED).order_by("created_at").first()
        site = settings.SITE_URL
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {Contact.objects.count()} contacts."))
        self.stdout.write(f"  Sign up:             {site}/subscribe/")
        if demo is not None:
            self.stdout.write(f"  Preference centre:   {contact_url(demo, Purpose.PREFERENCES)}")
            self.stdout.write(f"  Unsubscribe page:    {contact_url(demo, Purpose.UNSUBSCRIBE)}")
        self.stdout.write(f"  Admin:               {site}/admin/  (user: admin, password: {password})")
        self.stdout.write(f"  API docs:            {site}/api/docs/")
        self.stdout.write("  Flower:              http://127.0.0.1:5555/")
        self.stdout.write(f"  Mail goes to files:  {settings.EMAIL_FILE_PATH}/")

    def _topics(self) -> list[Topic]:
        for position, (slug, name_en, name_nl, text_en, text_nl) in enumerate(TOPICS):
            Topic.objects.update_or_create(
                slug=slug,
                defaults={
                    "name_en": name_en,
                    "name_nl": name_nl,
                    "description_en": text_en,
                    "description_nl": text_nl,
                    "position": position,
                },
            )
        return list(Topic.objects.all())

    def _contacts(self, count: int, topics: list[Topic], rng: random.Random) -> None:
        now = timezone.now()
        keys = [f.key for f in frequencies()]
        statuses = [Contact.Status.CONFIRMED] * 8 + [Contact.Status.PENDING, Contact.Status.UNSUBSCRIBED]
        contacts = []
        for n in range(count):
            created = now - timedelta(days=rng.randint(0, 540), minutes=rng.randint(0, 1440))
            status = rng.choice(statuses)
            share = 0 if rng.random() < 0.45 else rng.randint(5, 100)
            contacts.append(
                Contact(
                    email=f"demo{n:05d}@example.com",
                    first_name=rng.choice(FIRST_NAMES),
                    locale=rng.choice(["nl", "nl", "en"]),
                    status=status,
                    frequency=rng.choice(keys),
                    source=rng.choice(SOURCES),
                    share_of_customer=share,
                    potential=rng.choice(list(Contact.Potential.values)),
                    external_id=f"CRM-{100000 + n}" if share else None,
                    created_at=created,
                    confirmed_at=created + timedelta(minutes=5) if status != Contact.Status.PENDING else None,
                    unsubscribed_at=created + timedelta(days=30) if status == Contact.Status.UNSUBSCRIBED else None,
                )
            )
        Contact.objects.bulk_create(contacts, batch_size=500)
        through = Contact.topics.through
        links = [
            through(contact_id=c.id, topic_id=t.id) for c in contacts for t in rng.sample(topics, rng.randint(1, 3))
        ]
        through.objects.bulk_create(links, batch_size=2000)
        events = []
        for c in contacts:
            events.append(
                ConsentEvent(
                    contact=c,
                    kind=ConsentEvent.Kind.SIGNUP,
                    occurred_at=c.created_at,
                    source=c.source,
                    wording_version=settings.CONSENT_WORDING_VERSION,
                    evidence={"demo": True},
                )
            )
            if c.confirmed_at:
                events.append(
                    ConsentEvent(
                        contact=c,
                        kind=ConsentEvent.Kind.CONFIRMED,
                        occurred_at=c.confirmed_at,
                        source="confirm-link",
                        wording_version=settings.CONSENT_WORDING_VERSION,
                        evidence={"demo": True},
                    )
                )
        ConsentEvent.objects.bulk_create(events, batch_size=2000)
        schedules = []
        for c in contacts:
            if c.status != Contact.Status.CONFIRMED:
                continue
            interval = get_frequency(c.frequency).interval
            last = now - timedelta(seconds=rng.randint(0, int(interval.total_seconds())))
            schedules.append(Schedule(contact=c, next_due_at=last + interval, last_sent_at=last, welcome_step=1))
        Schedule.objects.bulk_create(schedules, batch_size=2000)

    def _content(self, topics: list[Topic]) -> None:
        """Create two fresh items and one evergreen item per topic, in English and in Dutch (once)."""
        if ContentItem.objects.exists():
            return
        now = timezone.now()
        items = []
        for topic in topics:
            for language in ("en", "nl"):
                name = topic.name(language)
                for n, (days, evergreen) in enumerate([(3, False), (20, False), (400, True)]):
                    title_en = (
                        f"{name}: the basics explained" if evergreen else f"{name}: what changed this month ({n + 1})"
                    )
                    title_nl = (
                        f"{name}: de basis uitgelegd"
                        if evergreen
                        else f"{name}: wat er deze maand veranderde ({n + 1})"
                    )
                    items.append(
                        ContentItem(
                            topic=topic,
                            language=language,
                            title=title_nl if language == "nl" else title_en,
                            summary=topic.description(language),
                            url=f"{settings.SITE_URL}/articles/{topic.slug}-{language}-{n + 1}/",
                            published_at=now - timedelta(days=days),
                            evergreen=evergreen,
                        )
                    )
        ContentItem.objects.bulk_create(items)

    def _conversions(self, rng: random.Random) -> None:
        """About a third of today's customers converted while we knew them: their conversions, for the charts."""
        now = timezone.now()
        conversions = []
        for contact in Contact.objects.filter(share_of_customer__gt=0).order_by("created_at"):
            if rng.random() > 0.35:
                continue
            converted_at = min(now, contact.created_at + timedelta(days=rng.randint(5, 240)))
            conversions.append(
                Conversion(
                    contact=contact,
                    converted_at=converted_at,
                    source="crm",
                    contact_source=contact.source,
                    potential=contact.potential,
                    signed_up_at=contact.created_at,
                    days_as_prospect=(converted_at - contact.created_at).days,
                    mails_before=max(1, (converted_at - contact.created_at).days // 30),
                )
            )
        Conversion.objects.bulk_create(conversions, batch_size=1000)

    def _way_out(self, rng: random.Random) -> None:
        """Who left and who stayed on the way out, and why, for the dashboard's "Leaving, understood"."""
        now = timezone.now()
        reasons = [*LeaveFeedback.Reason.values, "", ""]
        rows = []
        for contact in Contact.objects.exclude(status=Contact.Status.PENDING).order_by("created_at"):
            if contact.status == Contact.Status.UNSUBSCRIBED:
                outcome = LeaveFeedback.Outcome.LEFT
            elif rng.random() < 0.08:
                outcome = rng.choice(
                    [LeaveFeedback.Outcome.LESS_OFTEN, LeaveFeedback.Outcome.PAUSE, LeaveFeedback.Outcome.FEWER_TOPICS]
                )
            else:
                continue
            rows.append(
                LeaveFeedback(
                    contact=contact,
                    occurred_at=max(contact.created_at, now - timedelta(days=rng.randint(0, 330))),
                    outcome=outcome,
                    reason=rng.choice(reasons),
                    contact_source=contact.source,
                )
            )
        LeaveFeedback.objects.bulk_create(rows, batch_size=1000)

    def _health(self) -> None:
        """Score every confirmed relationship once, without acting on it (no mail is queued by the demo)."""
        ids = list(Contact.objects.filter(status=Contact.Status.CONFIRMED).values_list("pk", flat=True))
        health_recompute(contact_ids=ids, act=False)

    def _superuser(self) -> str:
        password = secrets.token_urlsafe(9)
        user, _created = get_user_model().objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True, "email": "admin@example.com"}
        )
        user.set_password(password)
        user.save()
        return password

    def _products_and_reminder_rules(self, rng: random.Random) -> None:
        """Give every demo customer a product with dates, and add reminder rules for them (issue 7)."""
        from cadence.models import ReminderRule
        from preferences.models import Product

        for product_type, event, days in [("home-insurance", "renewal", 30), ("home-insurance", "renewal", 7)]:
            ReminderRule.objects.get_or_create(product_type=product_type, event=event, days_before=days)
        ReminderRule.objects.get_or_create(product_type="fixed-deposit", event="end", days_before=30)
        if Product.objects.exists():
            return
        today = timezone.localdate()
        products = []
        for contact in Contact.objects.filter(share_of_customer__gt=0).order_by("pk").only("pk"):
            if rng.random() < 0.5:
                name, product_type = ("Woonverzekering", "home-insurance")
                renews_on, ends_on = today + timedelta(days=rng.randint(1, 365)), None
            else:
                name, product_type = ("Deposito 2 jaar", "fixed-deposit")
                renews_on, ends_on = None, today + timedelta(days=rng.randint(1, 730))
            products.append(
                Product(
                    contact_id=contact.pk,
                    name=name,
                    product_type=product_type,
                    started_on=today - timedelta(days=rng.randint(30, 900)),
                    renews_on=renews_on,
                    ends_on=ends_on,
                )
            )
        Product.objects.bulk_create(products, batch_size=1000)
