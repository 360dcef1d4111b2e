from __future__ import annotations

import factory
from django.utils import timezone

from cadence.kinds import Kind
from cadence.models import Announcement, ReminderRule
from messaging.models import Delivery, DeliveryEvent
from preferences.models import Contact, Product, Topic

# The kinds cadence sends as marketing mail (its producers set the flag the same way).
MARKETING_KINDS = frozenset({Kind.WELCOME, Kind.NURTURE, Kind.REENGAGEMENT})


class TopicFactory(factory.django.DjangoModelFactory[Topic]):
    class Meta:
        model = Topic
        django_get_or_create = ["slug"]

    slug = factory.Sequence(lambda n: f"topic-{n}")
    name_en = factory.LazyAttribute(lambda o: f"{o.slug.title()} news")
    name_nl = factory.LazyAttribute(lambda o: f"Nieuws over {o.slug}")


class ContactFactory(factory.django.DjangoModelFactory[Contact]):
    class Meta:
        model = Contact
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    first_name = "Sam"
    locale = "en"
    status = Contact.Status.CONFIRMED
    frequency = "monthly"
    confirmed_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def topics(self, create: bool, extracted: list[Topic] | None, **kwargs: object) -> None:
        if create and extracted:
            self.topics.set(extracted)


class ProductFactory(factory.django.DjangoModelFactory[Product]):
    class Meta:
        model = Product

    contact = factory.SubFactory(ContactFactory)
    name = "Home insurance"
    product_type = "home-insurance"
    external_id = factory.Sequence(lambda n: f"P-{n}")


class ReminderRuleFactory(factory.django.DjangoModelFactory[ReminderRule]):
    class Meta:
        model = ReminderRule

    product_type = "home-insurance"
    event = ReminderRule.Event.RENEWAL
    days_before = 30


class AnnouncementFactory(factory.django.DjangoModelFactory[Announcement]):
    class Meta:
        model = Announcement

    title = "Outage"
    subject_en = "Our app was down"
    subject_nl = "Onze app was onbereikbaar"
    body_en = "Yesterday our app was down for two hours. Your money was safe at all times."
    body_nl = "Gisteren was onze app twee uur onbereikbaar. Uw geld was altijd veilig."


# CADENCE
class ContentItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "cadence.ContentItem"

    topic = factory.SubFactory(TopicFactory)
    language = "en"
    title = factory.Sequence(lambda n: f"Article {n}")
    summary = "A short summary."
    url = factory.Sequence(lambda n: f"https://example.com/articles/{n}")
    published_at = factory.LazyFunction(timezone.now)
    evergreen = False


# MESSAGING
class DeliveryFactory(factory.django.DjangoModelFactory[Delivery]):
    """A queued nurture mail to a new contact; marketing follows the kind unless given."""

    class Meta:
        model = Delivery

    contact = factory.SubFactory(ContactFactory)
    kind = Kind.NURTURE
    template = factory.LazyAttribute(lambda o: str(o.kind))
    idempotency_key = factory.Sequence(lambda n: f"delivery:{n}")
    marketing = factory.LazyAttribute(lambda o: o.kind in MARKETING_KINDS)
    queue = Delivery.Queue.BULK


class DeliveryEventFactory(factory.django.DjangoModelFactory[DeliveryEvent]):
    """An ESP event about a delivery, for the delivery's contact."""

    class Meta:
        model = DeliveryEvent

    delivery = factory.SubFactory(DeliveryFactory)
    contact = factory.SelfAttribute("delivery.contact")
    esp_name = "postmark"
    event_id = factory.Sequence(lambda n: f"event-{n}")
    type = DeliveryEvent.Type.DELIVERED
    occurred_at = factory.LazyFunction(timezone.now)
