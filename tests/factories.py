from __future__ import annotations

import factory
from django.utils import timezone

from preferences.models import Contact, Topic


class TopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Topic
        django_get_or_create = ["slug"]

    slug = factory.Sequence(lambda n: f"topic-{n}")
    name_en = factory.LazyAttribute(lambda o: f"{o.slug.title()} news")
    name_nl = factory.LazyAttribute(lambda o: f"Nieuws over {o.slug}")


class ContactFactory(factory.django.DjangoModelFactory):
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
