"""Load demo data: topics in Dutch and English, about 1,000 contacts with the mail history the service
would have given them, a superuser. Safe to run again; refused without DEBUG."""

from __future__ import annotations

import random
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from cadence.health.services import health_recompute
from cadence.keys import nurture_key, welcome_key
from cadence.kinds import Kind
from cadence.models import ContactHealth, ContentItem, WelcomeStep
from cadence.schedules import schedules_create_from_history
from messaging.models import Delivery, DeliveryEvent
from preferences.frequencies import frequencies
from preferences.models import ConsentEvent, Contact, Conversion, LeaveFeedback, SuppressionEntry, Topic
from preferences.policy import effective_frequency, load_policies
from preferences.services import Evidence, contact_suppress
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
# The ESP named on the demo's delivery events (its mail really goes to files under var/outbox/).
DEMO_ESP = "demo"
# Share of contacts who signed up in the last two days: the ops page's welcome latency and sends chart.
RECENT_SIGNUPS = 0.04
# Share of confirmed contacts whose address bounced hard at their last mail (then suppressed).
HARD_BOUNCES = 0.015


class Command(BaseCommand):
    help = "Load demo topics, about 1,000 contacts (prospects included) and a superuser; print the URLs."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--contacts", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, contacts: int, seed: int, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "The demo makes up contacts, a superuser and their mail history: it runs only with DEBUG=true."
            )
        with transaction.atomic():
            topics = self._topics()
            self._content(topics)
            if not Contact.objects.exists():
                self._contacts(contacts, topics, random.Random(seed))
                self._history(random.Random(seed))
                self._conversions(random.Random(seed))
                self._way_out(random.Random(seed))
                self._bounces(random.Random(seed))
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
            if rng.random() < RECENT_SIGNUPS:
                created = now - timedelta(minutes=rng.randint(20, 48 * 60))
            else:
                created = now - timedelta(days=rng.randint(2, 540), minutes=rng.randint(0, 1440))
            status = rng.choice(statuses)
            # The confirmation link is followed a few minutes after the signup.
            confirmed = created + timedelta(minutes=rng.randint(1, 15), seconds=rng.randint(0, 59))
            confirmed = min(confirmed, now - timedelta(minutes=5))
            left = confirmed + (now - confirmed) * rng.uniform(0.3, 0.95)
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
                    confirmed_at=confirmed if status != Contact.Status.PENDING else None,
                    unsubscribed_at=left if status == Contact.Status.UNSUBSCRIBED else None,
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

    def _history(self, rng: random.Random) -> None:
        """Give every confirmed contact the mail the service would have sent: the welcome seconds after
        confirmation, the welcome series, then nurture at their own interval until now (or until they left),
        with the opens and clicks of the engaged ones; and the schedule that follows from it."""
        now = timezone.now()
        policies = load_policies()
        steps = list(WelcomeStep.objects.filter(is_active=True).order_by("position"))
        deliveries: list[Delivery] = []
        events: list[DeliveryEvent] = []
        history: list[tuple[Contact, datetime, int, int]] = []
        engaged_at: dict[Any, datetime] = {}
        contacts = Contact.objects.exclude(confirmed_at=None).exclude(status=Contact.Status.PENDING)
        for contact in contacts.order_by("created_at"):
            assert contact.confirmed_at is not None
            end = contact.unsubscribed_at or now
            interval = effective_frequency(contact, policies).interval
            engagement = rng.choice([0.0, 0.1, 0.3, 0.5, 0.7])
            mails = [
                (
                    Kind.WELCOME,
                    steps[0].template if steps else "welcome",
                    welcome_key(contact.pk, 0),
                    Delivery.Queue.WELCOME,
                    contact.confirmed_at + timedelta(seconds=rng.uniform(2, 30)),
                )
            ]
            step = 1
            while step < len(steps) and contact.confirmed_at + steps[step].delay <= end:
                at = contact.confirmed_at + steps[step].delay + timedelta(minutes=rng.randint(0, 20))
                mails.append(
                    (
                        Kind.WELCOME,
                        steps[step].template,
                        welcome_key(contact.pk, step),
                        Delivery.Queue.BULK,
                        at,
                    )
                )
                step += 1
            slot = step - 1  # each mail after the first welcome took one slot of the schedule
            if step >= len(steps):
                while True:
                    due = mails[-1][4] + interval
                    if due > end:
                        break
                    at = min(due + timedelta(minutes=rng.randint(0, 240)), end - timedelta(seconds=1))
                    slot += 1
                    mails.append((Kind.NURTURE, "nurture", nurture_key(contact.pk, slot), Delivery.Queue.BULK, at))
            for kind, template, key, queue, sent_at in mails:
                delivery = Delivery(
                    contact=contact, kind=kind, template=template, idempotency_key=key, status=Delivery.Status.SENT,
                    marketing=True, queue=queue, esp_name=DEMO_ESP, esp_message_id=f"demo-{key}",
                    attempts=1, created_at=sent_at - timedelta(seconds=1), claimed_at=sent_at, sent_at=sent_at,
                )  # fmt: skip
                deliveries.append(delivery)
                if rng.random() < engagement:
                    opened = min(now, sent_at + timedelta(minutes=rng.randint(2, 48 * 60)))
                    delivery.feedback, delivery.feedback_at = DeliveryEvent.Type.OPENED, opened
                    events.append(self._event(delivery, DeliveryEvent.Type.OPENED, opened))
                    if rng.random() < 0.3:
                        clicked = min(now, opened + timedelta(seconds=rng.randint(5, 600)))
                        delivery.feedback, delivery.feedback_at = DeliveryEvent.Type.CLICKED, clicked
                        events.append(self._event(delivery, DeliveryEvent.Type.CLICKED, clicked))
                    engaged_at[contact.pk] = delivery.feedback_at
                elif sent_at > now - timedelta(hours=48):
                    events.append(self._event(delivery, DeliveryEvent.Type.DELIVERED, sent_at + timedelta(seconds=3)))
            if contact.status == Contact.Status.CONFIRMED:
                history.append((contact, mails[-1][4], step, slot))
        Delivery.objects.bulk_create(deliveries, batch_size=2000)
        DeliveryEvent.objects.bulk_create(events, batch_size=2000)
        schedules_create_from_history(history=history)
        ContactHealth.objects.bulk_create(
            [ContactHealth(contact_id=pk, last_engaged_at=at) for pk, at in engaged_at.items()], batch_size=2000
        )

    @staticmethod
    def _event(delivery: Delivery, kind: str, at: datetime) -> DeliveryEvent:
        return DeliveryEvent(
            delivery=delivery, contact_id=delivery.contact_id, esp_name=DEMO_ESP, event_id=uuid.uuid4().hex,
            type=kind, esp_type=kind, occurred_at=at, received_at=at,
        )  # fmt: skip

    def _bounces(self, rng: random.Random) -> None:
        """A few addresses bounced hard at their last mail: recorded and suppressed as a webhook would."""
        last = Delivery.objects.filter(status=Delivery.Status.SENT).order_by("contact_id", "-sent_at")
        seen = set()
        for delivery in last.filter(contact__status=Contact.Status.CONFIRMED).select_related("contact"):
            if delivery.contact_id in seen:
                continue
            seen.add(delivery.contact_id)
            if rng.random() >= HARD_BOUNCES or delivery.sent_at is None:
                continue
            bounced = delivery.sent_at + timedelta(seconds=rng.randint(2, 60))
            delivery.feedback, delivery.feedback_at = DeliveryEvent.Type.BOUNCED, bounced
            delivery.save(update_fields=["feedback", "feedback_at"])
            self._event(delivery, DeliveryEvent.Type.BOUNCED, bounced).save()
            ContactHealth.objects.update_or_create(
                contact_id=delivery.contact_id, defaults={"bounce_count": 1, "last_bounce_at": bounced}
            )
            contact_suppress(
                contact=delivery.contact,
                reason=SuppressionEntry.Reason.HARD_BOUNCE,
                evidence=Evidence(source=f"esp:{DEMO_ESP}", extra={"demo": True, "delivery": str(delivery.pk)}),
            )

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
